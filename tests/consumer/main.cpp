// Links the installed mmkt: builds a small JMVAE, computes its objective and a PKT loss, and
// prints both (the ctest checks the output).
#include <iostream>

#include "mmkt/distill/losses.h"
#include "mmkt/models/config.h"
#include "mmkt/models/multimodal_vae.h"

int main() {
  using namespace mmkt;
  models::ModelConfig config;
  config.latent_dim = 4;
  config.joint_hidden = {16};
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = image.decoder = "mlp";
  image.likelihood = "bernoulli";
  image.hidden = {16};
  image.shape = {1, 4, 4};
  models::ModalityConfig label;
  label.name = "label";
  label.kind = models::ModalityKind::kLabel;
  label.encoder = label.decoder = "mlp";
  label.likelihood = "categorical";
  label.hidden = {8};
  label.classes = 2;
  config.modalities = {image, label};
  torch::manual_seed(0);
  models::MultimodalVae model(config);
  models::Inputs inputs;
  inputs["image"].data = torch::bernoulli(torch::full({8, 1, 4, 4}, 0.5));
  inputs["label"].data = torch::arange(8) % 2;
  const auto out = model->objective(inputs, {});
  const auto x = torch::randn({8, 4});
  std::cout << "objective " << out.loss.item<double>() << " pkt(x,x) "
            << distill::pkt_loss(x, x).item<double>() << "\n";
  return out.loss.item<double>() > 0 ? 0 : 1;
}
