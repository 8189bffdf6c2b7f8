"""Lines of the reference assignments/vae/vae.py that the catalog's edits replace or anchor on.

Each must occur exactly once in the reference (the edits check it). When the reference changes,
update the text here, and the entries follow.
"""

# A.1: the layers, the AE's encode, decode.
AE_LAYERS = """\
        self.enc_hidden = nn.Linear(n_dims_data, hidden_layer_size)
        self.enc_code = nn.Linear(hidden_layer_size, n_dims_code)
        self.dec_hidden = nn.Linear(n_dims_code, hidden_layer_size)
        self.dec_output = nn.Linear(hidden_layer_size, n_dims_data)
"""
ENC_HIDDEN_LAYER = "self.enc_hidden = nn.Linear(n_dims_data, hidden_layer_size)"
DEC_HIDDEN_LAYER = "self.dec_hidden = nn.Linear(n_dims_code, hidden_layer_size)"
DEC_OUTPUT_LAYER = "self.dec_output = nn.Linear(hidden_layer_size, n_dims_data)"
AE_ENCODE = """\
            hidden = F.relu(self.enc_hidden(x))
            return self.enc_code(hidden)
"""
DECODE = """\
        hidden = F.relu(self.dec_hidden(z))
        return torch.sigmoid(self.dec_output(hidden))
"""

# B.2: the log-variance layer, the VAE's encode, the KL term; given code around them.
LOGVAR_LAYER = "            self.enc_logvar = nn.Linear(hidden_layer_size, n_dims_code)\n"
VAE_ENCODE = """\
        hidden = F.relu(self.enc_hidden(x))
        return self.enc_code(hidden), self.enc_logvar(hidden)
"""
KL = "            kld = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1)\n"
BCE = '        bce = F.binary_cross_entropy(recon_x, x.reshape(recon_x.shape), reduction="sum")\n'
LOSS_RETURN = "        return bce + kld, bce, kld\n"
FORWARD_DECODE = "        return self.decode(z), mu, logvar\n"

# C: encode_dataset's body.
ENCODE_DATASET_START = "    # keep the codes (for a \"vae\": mu only) and labels, and concatenate them.\n"
ENCODE_DATASET = """\
    model.eval()
    device = next(model.parameters()).device
    all_codes, all_labels = [], []
    for x, y in loader:
        x = x.to(device).reshape(x.shape[0], -1)
        codes = model.encode(x)
        if model.autoencoder_type == "vae":
            codes = codes[0]
        all_codes.append(codes.float().cpu())
        all_labels.append(torch.as_tensor(y).long().cpu())
    return torch.cat(all_codes), torch.cat(all_labels)
"""
MEANS_ONLY = """\
        if model.autoencoder_type == "vae":
            codes = codes[0]
"""
APPEND_LABELS = "        all_labels.append(torch.as_tensor(y).long().cpu())\n"

# Bonus: celeba_subset and celeba_transform.
SUBSET = """\
    generator = torch.Generator().manual_seed(seed)
    n_kept = min(n_images, len(dataset))
    indices = torch.randperm(len(dataset), generator=generator)[:n_kept]
    return torch.utils.data.Subset(dataset, indices.tolist())
"""
SUBSET_START = "    # random state), without repeats, and wrap them in torch.utils.data.Subset.\n"
TRANSFORM = """\
    return torchvision.transforms.Compose([
        torchvision.transforms.CenterCrop(148),
        torchvision.transforms.Resize(image_size),
        torchvision.transforms.ToTensor(),
    ])
"""
TRANSFORM_START = "    # image_size, and turn it into a tensor (torchvision.transforms).\n"

# Anchors for code added to a whole module (hostile entries), present in the release too.
AFTER_IMPORTS = "from tqdm.auto import tqdm\n"
MAIN_GUARD = '\nif __name__ == "__main__":\n    main()\n'

# B.2: monte_carlo_loss's average over the L samples.
MONTE_CARLO_MEAN = "    return tuple(torch.stack(term).mean() for term in zip(*terms))\n"
