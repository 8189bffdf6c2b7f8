"""Mutants: the reference with one plausible student mistake each, and the task(s) it must lose.
Every other task must keep the reference's score. Together they must fail every hidden test.
"""

from autograder.qa.catalog import Code, Edit, Entry, loses
from autograder.qa.catalog import results as r
from autograder.graders.vae.catalog import snippets as s


def code_mutant(name, does, tasks, *edits):
    """The reference's code with edits (and the reference's results)."""
    return Entry(name, "mutant", does, expect=loses(*tasks), code=Code(edits=edits))


def results_mutant(name, does, tasks, *operations):
    """The reference's code with its results changed by operations."""
    return Entry(name, "mutant", does, expect=loses(*tasks), results=operations)


def kl(expression):
    """An edit of the KL line to another expression."""
    return Edit(s.KL, f"            kld = {expression}\n")


ARCHITECTURE = (
    code_mutant("m_decoder_no_sigmoid", "decode ends with the linear layer, no sigmoid", ("A.1",),
                Edit(s.DECODE, "        hidden = F.relu(self.dec_hidden(z))\n        return self.dec_output(hidden)\n")),
    code_mutant("m_relu_before_sigmoid", "decode puts a ReLU between its last layer and the sigmoid", ("A.1",),
                Edit(s.DECODE, "        hidden = F.relu(self.dec_hidden(z))\n"
                               "        return torch.sigmoid(F.relu(self.dec_output(hidden)))\n")),
    code_mutant("m_decoder_tanh", "the decoder's hidden activation is tanh", ("A.1",),
                Edit(s.DECODE, "        hidden = torch.tanh(self.dec_hidden(z))\n"
                               "        return torch.sigmoid(self.dec_output(hidden))\n")),
    code_mutant("m_encoder_no_relu", "the AE's encode has no ReLU after its hidden layer", ("A.1",),
                Edit(s.AE_ENCODE, "            hidden = self.enc_hidden(x)\n            return self.enc_code(hidden)\n")),
    code_mutant("m_relu_on_code", "the AE's encode puts a ReLU on the code", ("A.1",),
                Edit(s.AE_ENCODE, "            hidden = F.relu(self.enc_hidden(x))\n"
                                  "            return F.relu(self.enc_code(hidden))\n")),
    code_mutant("m_encode_stops_at_hidden", "the AE's encode returns the hidden layer, never the code", ("A.1",),
                Edit(s.AE_ENCODE, "            hidden = F.relu(self.enc_hidden(x))\n            return hidden\n")),
    code_mutant("m_ae_encode_tuple", "the AE's encode returns (z, None) like the VAE's pair", ("A.1",),
                Edit(s.AE_ENCODE, "            hidden = F.relu(self.enc_hidden(x))\n"
                                  "            return self.enc_code(hidden), None\n")),
    # A.1 and B.2: decode's layers are wrong, so the grader cannot recognise the mistake in values it
    # computes, and forward + loss_function (B.2), which needs decode, is charged too (DESIGN §9).
    code_mutant("m_decoder_width_256", "the decoder's hidden layer is 256 wide whatever hidden_layer_size says",
                ("A.1", "B.2"),
                Edit(s.DEC_HIDDEN_LAYER, "self.dec_hidden = nn.Linear(n_dims_code, 256)"),
                Edit(s.DEC_OUTPUT_LAYER, "self.dec_output = nn.Linear(256, n_dims_data)")),
    code_mutant("m_decoder_hardcodes_784", "the decoder's output layer hard-codes 784 pixels", ("A.1",),
                Edit(s.DEC_OUTPUT_LAYER, "self.dec_output = nn.Linear(hidden_layer_size, 784)")),
    # the hidden layer that the AE and the VAE share is hard-coded: a structural mistake, charged in both
    code_mutant("m_encoder_hardcodes_784", "the encoder's input layer hard-codes 784 pixels", ("A.1", "B.2"),
                Edit(s.ENC_HIDDEN_LAYER, "self.enc_hidden = nn.Linear(784, hidden_layer_size)")),
)

VAE = (
    code_mutant("m_logvar_softplus", "logvar is constrained positive by a softplus", ("B.2",),
                Edit(s.VAE_ENCODE, "        hidden = F.relu(self.enc_hidden(x))\n"
                                   "        return self.enc_code(hidden), F.softplus(self.enc_logvar(hidden))\n")),
    code_mutant("m_logvar_from_mu_layer", "the VAE's encode returns the mu layer twice; the logvar layer is unused",
                ("B.2",),
                Edit(s.VAE_ENCODE, "        hidden = F.relu(self.enc_hidden(x))\n"
                                   "        return self.enc_code(hidden), self.enc_code(hidden)\n")),
    code_mutant("m_logvar_hardcodes_512", "the log-variance layer hard-codes 512 hidden units", ("B.2",),
                Edit(s.LOGVAR_LAYER, "            self.enc_logvar = nn.Linear(512, n_dims_code)\n")),
    code_mutant("m_vae_encoder_no_relu", "the VAE's encode has no ReLU after its hidden layer", ("B.2",),
                Edit(s.VAE_ENCODE, "        hidden = self.enc_hidden(x)\n"
                                   "        return self.enc_code(hidden), self.enc_logvar(hidden)\n")),
    code_mutant("m_forward_decodes_mu", "forward decodes mu instead of the sampled z", ("B.2",),
                Edit(s.FORWARD_DECODE, "        return self.decode(mu), mu, logvar\n")),
)

KL = (
    code_mutant("m_kl_no_half", "the KL misses the 1/2", ("B.2",),
                kl("torch.sum(mu.pow(2) + logvar.exp() - logvar - 1)")),
    code_mutant("m_kl_sign", "the KL has the wrong sign", ("B.2",),
                kl("-0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1)")),
    code_mutant("m_kl_std_for_variance", "the KL uses the standard deviation where it wants the variance", ("B.2",),
                kl("0.5 * torch.sum(mu.pow(2) + torch.exp(0.5 * logvar) - 0.5 * logvar - 1)")),
    code_mutant("m_kl_mean", "the KL is a mean instead of a sum", ("B.2",),
                kl("0.5 * torch.mean(mu.pow(2) + logvar.exp() - logvar - 1)")),
    code_mutant("m_kl_vector", "the KL is one value per example (summed over dim 1 only)", ("B.2",),
                kl("0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1, dim=1)")),
    code_mutant("m_kl_no_mu_squared", "the KL misses the mu^T mu term", ("B.2",),
                kl("0.5 * torch.sum(logvar.exp() - logvar - 1)")),
    code_mutant("m_kl_no_minus_one", "the KL misses the -n term (nonzero at the prior)", ("B.2",),
                kl("0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar)")),
    code_mutant("m_kl_logdet_sign", "the KL adds log|Sigma| instead of subtracting it", ("B.2",),
                kl("0.5 * torch.sum(mu.pow(2) + logvar.exp() + logvar - 1)")),
)

LOSS = (
    code_mutant("m_bce_mean", "the binary cross-entropy is averaged (reduction='mean')", ("B.2",),
                Edit(s.BCE, s.BCE.replace('reduction="sum"', 'reduction="mean"'))),
    code_mutant("m_loss_without_kl", "loss_function returns bce as the loss, forgetting the KL", ("B.2",),
                Edit(s.LOSS_RETURN, "        return bce, bce, kld\n")),
)

LATENT = (
    code_mutant("m_encode_dataset_samples", "encode_dataset keeps a random sample z instead of mu", ("C",),
                Edit(s.MEANS_ONLY, '        if model.autoencoder_type == "vae":\n'
                                   "            codes = model.sample(*codes)\n")),
    code_mutant("m_encode_dataset_labels_reversed", "encode_dataset collects the labels' batches in reverse order",
                ("C",),
                Edit(s.APPEND_LABELS, "        all_labels.insert(0, torch.as_tensor(y).long().cpu())\n")),
    code_mutant("m_encode_dataset_always_first", "encode_dataset takes encode(x)[0] for the AE too", ("C",),
                Edit(s.MEANS_ONLY, "        codes = codes[0]\n")),
    code_mutant("m_encode_dataset_float_labels", "encode_dataset returns float labels", ("C",),
                Edit(s.APPEND_LABELS, "        all_labels.append(torch.as_tensor(y).float().cpu())\n")),
)

BONUS = (
    code_mutant("m_subset_unseeded", "celeba_subset draws from the global random state", ("bonus",),
                Edit(s.SUBSET, s.SUBSET.replace("torch.randperm(len(dataset), generator=generator)",
                                                "torch.randperm(len(dataset))"))),
    code_mutant("m_subset_with_replacement", "celeba_subset draws indices with replacement", ("bonus",),
                Edit(s.SUBSET, s.SUBSET.replace("torch.randperm(len(dataset), generator=generator)[:n_kept]",
                                                "torch.randint(len(dataset), (n_kept,), generator=generator)"))),
    code_mutant("m_subset_wrong_size", "celeba_subset ignores n_images and keeps the whole data set", ("bonus",),
                Edit(s.SUBSET, s.SUBSET.replace("min(n_images, len(dataset))", "len(dataset)"))),
    code_mutant("m_transform_no_crop", "celeba_transform resizes without cropping to a square", ("bonus",),
                Edit(s.TRANSFORM, s.TRANSFORM.replace("        torchvision.transforms.CenterCrop(148),\n", ""))),
)

RESULTS = (
    results_mutant("m_ae_trained_20_epochs", "the AE was trained for 20 epochs (folder ep=20)", ("A.2", "C"),
                   r.trained_for("A.2", 20)),
    results_mutant("m_ae_last_sample_wrong_size", "the AE's last sample grid is 100x100 pixels", ("A.2",),
                   r.resize_image("A.2", "sample_{last}.png", (100, 100))),
    results_mutant("m_ae_losses_doubled", "the AE's losses are twice the reference's (above the band)", ("A.2",),
                   r.scale_losses("A.2", 2.0)),
    results_mutant("m_vae_stopped_at_60", "the VAE run stopped after 60 of 100 epochs", ("B.2",),
                   r.stopped_at("B.2", 60)),
    results_mutant("m_vae_losses_per_pixel", "the VAE's losses are divided by 784 pixels (below the band)", ("B.2",),
                   r.scale_losses("B.2", 1 / 784)),
    results_mutant("m_vae_manifold_missing", "the VAE's manifold.png is missing", ("C",),
                   r.remove_file("B.2", "manifold.png")),
    results_mutant("m_no_celeba_run", "the CelebA run's folder is missing", ("bonus",),
                   r.drop_run("bonus")),
)

MONTE_CARLO = (
    code_mutant("m_monte_carlo_sums_samples", "monte_carlo_loss sums the L samples' terms instead of averaging",
                ("B.2",), Edit(s.MONTE_CARLO_MEAN, s.MONTE_CARLO_MEAN.replace(".mean()", ".sum()"))),
    code_mutant("m_monte_carlo_first_sample", "monte_carlo_loss decodes only the first noise sample L times",
                ("B.2",), Edit(s.MONTE_CARLO_MEAN, "    terms = [terms[0]] * len(terms)\n" + s.MONTE_CARLO_MEAN)),
)

MUTANTS = ARCHITECTURE + VAE + KL + LOSS + LATENT + BONUS + RESULTS + MONTE_CARLO

# Result files that the submitted model.pt did not produce: they earn nothing (the result-file tests
# recompute them from model.pt), whatever the code earns. The reference entry keeps those points.
FABRICATED = (
    Entry("m_results_fabricated", "mutant", "hand-typed perf_metrics.csv at the band's middle and generated PNGs "
          "of the right sizes beside the reference's model.pt", expect={"A.2": "lose", "B.2": "code", "C": "code"},
          results=(r.fabricated("A.2"), r.fabricated("B.2"))),
    Entry("m_results_fabricated_no_model", "mutant", "the same hand-made results without model.pt",
          expect={"A.2": "lose", "B.2": "code", "C": "code"},
          results=(r.fabricated("A.2", keep_model=False), r.fabricated("B.2", keep_model=False))),
    Entry("m_ae_short_run_renamed", "mutant", "a real 5-epoch AE run handed in under the ep=100 folder",
          expect=loses("A.2"), results=(r.short_run_renamed("A.2", 5),)),
)

MUTANTS = MUTANTS + FABRICATED

# forward itself wrong while decode, the KL and bce are right: the ELBO check charges it.
FORWARD = (
    code_mutant("m_forward_returns_logvar_mu", "forward returns (x_hat, logvar, mu): loss_function gets them swapped",
                ("B.2",), Edit(s.FORWARD_DECODE, "        return self.decode(z), logvar, mu\n")),
)

MUTANTS = MUTANTS + FORWARD

# The KL's properties are charged on their own only where the closed form cannot explain them.
AE_KL = (
    code_mutant("m_ae_kl_not_zero", "the plain AE's loss adds a KL term of its code (as if logvar were 0)", ("B.2",),
                Edit("            kld = torch.zeros((), device=recon_x.device)\n",
                     "            kld = 0.5 * torch.sum(mu.pow(2))\n")),
)

MUTANTS = MUTANTS + AE_KL

# The terms' types are charged on their own when the KL cannot explain them.
LOSS_TYPES = (
    code_mutant("m_loss_returns_floats", "loss_function returns Python numbers (.item()) instead of tensors", ("B.2",),
                Edit(s.LOSS_RETURN, "        return (bce + kld).item(), bce.item(), kld.item()\n")),
)

MUTANTS = MUTANTS + LOSS_TYPES
