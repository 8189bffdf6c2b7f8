"""The reference, the blank release, and correct variants: solutions that differ from the
reference only in ways the handout allows. Each variant must earn exactly the reference's score;
a variant that loses a point shows a false negative of the grader.
"""

from autograder.qa.catalog import Code, Edit, Entry
from autograder.graders.vae.catalog import snippets as s

ALL_POINTS = {"A.1": "max", "A.2": "max", "B.2": "max", "C": "max", "bonus": "max"}
NOTHING = {"A.1": 0, "A.2": 0, "B.2": 0, "C": 0, "bonus": 0}

REFERENCE = Entry(
    "reference", "reference", "the single source's vae.py with the reference's results: every autograded point",
    expect=ALL_POINTS, notebook="source")

BLANK = Entry(
    "blank", "blank", "the untouched student release (stubs, no results/): no point",
    expect=NOTHING, code=Code(base="release"), results=None)


def variant(name, does, *edits):
    """A correct solution: the reference with edits; must score exactly what the reference does."""
    return Entry(name, "variant", does, expect={}, code=Code(edits=edits))


VARIANTS = (
    variant(
        "v_sequential", "encoder and decoder as nn.Sequential with module activations, other names",
        Edit(s.AE_LAYERS, """\
        self.encoder = nn.Sequential(nn.Linear(n_dims_data, hidden_layer_size), nn.ReLU())
        self.fc_code = nn.Linear(hidden_layer_size, n_dims_code)
        self.decoder = nn.Sequential(
            nn.Linear(n_dims_code, hidden_layer_size), nn.ReLU(),
            nn.Linear(hidden_layer_size, n_dims_data), nn.Sigmoid(),
        )
"""),
        Edit(s.LOGVAR_LAYER, "            self.fc_logvar = nn.Linear(hidden_layer_size, n_dims_code)\n"),
        Edit(s.AE_ENCODE, "            return self.fc_code(self.encoder(x))\n"),
        Edit(s.VAE_ENCODE, "        h = self.encoder(x)\n        return self.fc_code(h), self.fc_logvar(h)\n"),
        Edit(s.DECODE, "        return self.decoder(z)\n")),
    variant(
        "v_names_and_order", "layers registered decoder first, logvar head called before the mu head",
        Edit(s.AE_LAYERS, """\
        self.output_layer = nn.Linear(hidden_layer_size, n_dims_data)
        self.latent_to_hidden = nn.Linear(n_dims_code, hidden_layer_size)
        self.mu_head = nn.Linear(hidden_layer_size, n_dims_code)
        self.input_to_hidden = nn.Linear(n_dims_data, hidden_layer_size)
"""),
        Edit(s.LOGVAR_LAYER, "            self.logvar_head = nn.Linear(hidden_layer_size, n_dims_code)\n"),
        Edit(s.AE_ENCODE, "            return self.mu_head(torch.relu(self.input_to_hidden(x)))\n"),
        Edit(s.VAE_ENCODE, """\
        h = torch.relu(self.input_to_hidden(x))
        logvar = self.logvar_head(h)
        mu = self.mu_head(h)
        return mu, logvar
"""),
        Edit(s.DECODE, "        return torch.sigmoid(self.output_layer(torch.relu(self.latent_to_hidden(z))))\n")),
    variant(
        "v_modulelist", "nn.ModuleList layers, nn.ReLU / nn.Sigmoid modules kept as attributes",
        Edit(s.AE_LAYERS, """\
        self.encoder_layers = nn.ModuleList([nn.Linear(n_dims_data, hidden_layer_size),
                                             nn.Linear(hidden_layer_size, n_dims_code)])
        self.decoder_layers = nn.ModuleList([nn.Linear(n_dims_code, hidden_layer_size),
                                             nn.Linear(hidden_layer_size, n_dims_data)])
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()
"""),
        Edit(s.LOGVAR_LAYER, "            self.logvar_layer = nn.Linear(hidden_layer_size, n_dims_code)\n"),
        Edit(s.AE_ENCODE, "            return self.encoder_layers[1](self.relu(self.encoder_layers[0](x)))\n"),
        Edit(s.VAE_ENCODE, """\
        h = self.relu(self.encoder_layers[0](x))
        return self.encoder_layers[1](h), self.logvar_layer(h)
"""),
        Edit(s.DECODE, "        return self.sigmoid(self.decoder_layers[1](self.relu(self.decoder_layers[0](z))))\n")),
    variant(
        "v_kl_distributions", "the KL through torch.distributions.Normal and kl_divergence",
        Edit(s.KL, """\
            q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
            prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
            kld = torch.distributions.kl_divergence(q, prior).sum()
""")),
    variant(
        "v_kl_trace_formula", "the KL as 1/2 [mu^T mu + tr Sigma - log|Sigma| - n] per example, then summed",
        Edit(s.KL, """\
            quadratic = (mu * mu).sum(dim=1)
            trace = logvar.exp().sum(dim=1)
            log_det = logvar.sum(dim=1)
            kld = (0.5 * (quadratic + trace - log_det - mu.shape[1])).sum()
""")),
    variant(
        "v_handwritten_bce", "the binary cross-entropy written out with torch.log; the KL in Kingma's form",
        Edit(s.BCE, """\
        target = x.reshape(recon_x.shape)
        bce = -(target * torch.log(recon_x) + (1 - target) * torch.log(1 - recon_x)).sum()
"""),
        Edit(s.KL, "            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())\n")),
    variant(
        "v_separate_mu_head", "the VAE gets a mu layer of its own (the AE's code layer stays unused in it)",
        Edit(s.LOGVAR_LAYER, """\
            self.enc_mu = nn.Linear(hidden_layer_size, n_dims_code)
            self.enc_logvar = nn.Linear(hidden_layer_size, n_dims_code)
"""),
        Edit(s.VAE_ENCODE, """\
        hidden = F.relu(self.enc_hidden(x))
        return self.enc_mu(hidden), self.enc_logvar(hidden)
""")),
    variant(
        "v_encode_dataset_forward", "encode_dataset takes the codes from forward (x_hat, mu or z, logvar)",
        Edit(s.ENCODE_DATASET, """\
    codes, labels = [], []
    for batch, targets in loader:
        _, mean, _ = model(batch.reshape(len(batch), -1))
        codes.append(mean.detach().cpu().float())
        labels.append(targets.cpu().to(torch.int64))
    return torch.cat(codes, dim=0), torch.cat(labels, dim=0)
""")),
    variant(
        "v_random_split_subset", "celeba_subset as the first part of a seeded torch.utils.data.random_split",
        Edit(s.SUBSET, """\
    n = min(n_images, len(dataset))
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.random_split(dataset, [n, len(dataset) - n], generator=generator)[0]
""")),
    variant(
        "v_numpy_subset", "celeba_subset from numpy's seeded Generator.choice; resize, then crop",
        Edit(s.SUBSET, """\
    import numpy as np
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(dataset), size=min(n_images, len(dataset)), replace=False)
    return torch.utils.data.Subset(dataset, chosen)
"""),
        Edit(s.TRANSFORM, """\
    from torchvision import transforms
    return transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size),
                               transforms.ToTensor()])
""")),
    variant(
        "v_random_sample_subset", "celeba_subset from random.Random(seed).sample; encode_dataset checks for a tuple",
        Edit(s.SUBSET, """\
    import random
    k = min(n_images, len(dataset))
    return torch.utils.data.Subset(dataset, random.Random(seed).sample(range(len(dataset)), k))
"""),
        Edit(s.ENCODE_DATASET, """\
    model.eval()
    codes, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            out = model.encode(x.flatten(1))
            mu = out[0] if isinstance(out, tuple) else out
            codes.append(mu.cpu())
            labels.append(y.long())
    return torch.cat(codes).float(), torch.cat(labels)
""")),
)
