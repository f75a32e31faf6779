#include "mmkt/query/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include "mmkt/core/error.h"
#include "mmkt/models/networks.h"
#include "mmkt/query/inputs.h"

namespace mmkt::query {

namespace {
// z_1 = mu, z_2..n ~ q (a seeded generator of its own).
torch::Tensor latent_draws(const models::Gaussian& q, std::int64_t n, std::uint64_t seed) {
  MMKT_CHECK_INPUT(n > 0, "--n must be positive");
  auto gen = at::detail::createCPUGenerator(seed);
  const auto mu = q.mu[0].cpu(), sd = (0.5 * q.logvar[0]).exp().cpu();
  auto eps = torch::randn({n, mu.size(0)}, gen, torch::kFloat32);
  eps[0].zero_();
  return (mu + sd * eps).to(q.mu.device());
}
}  // namespace

torch::Tensor images_from_text(LoadedRun& run, const models::ModalityInput& text, std::int64_t n,
                               std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  if (run.model->is_training())
    run.model
        ->eval();  // no write when already evaluating (mmkt serve shares the model between threads)
  const auto q = run.model->encode(modality_of_kind(run, models::ModalityKind::kText), text);
  const auto z = latent_draws(q, n, seed);
  return run.model->decoder(modality_of_kind(run, models::ModalityKind::kImage)).mean(z).cpu();
}

std::vector<std::string> captions_from_image(LoadedRun& run, const models::ModalityInput& image,
                                             std::int64_t n, std::int64_t beam,
                                             std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  if (run.model->is_training())
    run.model
        ->eval();  // no write when already evaluating (mmkt serve shares the model between threads)
  MMKT_CHECK_INPUT(beam > 0, "--beam must be positive");
  const auto text = modality_of_kind(run, models::ModalityKind::kText);
  auto* decoder = dynamic_cast<models::TextDecoderImpl*>(&run.model->decoder(text));
  MMKT_CHECK_INPUT(decoder != nullptr, "the run's text decoder cannot generate captions");
  const auto q = run.model->encode(modality_of_kind(run, models::ModalityKind::kImage), image);
  const auto z = latent_draws(q, n, seed);
  const auto ids = (beam == 1 ? decoder->greedy(z) : decoder->beam_search(z, beam)).cpu();
  std::vector<std::string> out;
  for (std::int64_t i = 0; i < ids.size(0); ++i) {
    const auto row = ids[i].contiguous();
    out.push_back(run.data.tokenizer->decode(std::vector<std::int64_t>(
        row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel())));
  }
  return out;
}

}  // namespace mmkt::query
