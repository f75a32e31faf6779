// Coherence of generated data, as MultiVae and the CdSprites+ toolkit (Sejnova et al. 2023)
// report it. Evaluators judge what was generated:
//   - an image classifier trained by mmkt on the dataset's real images (saved with the run):
//     the class for labelled datasets, one head per active factor for shapes;
//   - a caption parser: the class named in a caption (class-name variants of the attribute
//     file, longest match), parse_shapes_caption's factors for shapes; a label modality's
//     argmax.
// Each item's truth is a row of G "groups" (the class; or shape, size, colour, ... for shapes).
//   cross-coherence image|m : z ~ q(z|m), image = decoder mean, judged by the image classifier
//   cross-coherence m|image : z ~ q(z|image), m generated (greedy caption / label argmax), parsed
//   joint coherence         : z ~ N(0,I); both generated; agreement of the two judgements
// Reported: strict = share of items with every group right ("strict" of CdSprites+), feats =
// mean number of groups right (and as a share of G); each cross-coherence again on the test
// items of the classes held out of training ("... (held-out classes)": shapes' compositional
// combinations such as red hearts), when the run has any.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/run/run.h"

namespace mmkt::eval {

struct EvaluationSchema {
  std::string kind;                                   // "class" | "shapes"
  std::vector<std::string> groups;                    // "class" | active factor names
  std::vector<std::int64_t> values;                   // values per group
  std::vector<std::vector<std::string>> value_names;  // per group
  int shapes_level = 0;
  // Class-name variants per class ("class" kind with captions), for parsing.
  std::vector<std::vector<std::string>> class_name_variants;
};
EvaluationSchema evaluation_schema(const LoadedRun& run);

// Truth rows [N,G] from class labels [N].
torch::Tensor targets_from_labels(const EvaluationSchema& schema, const torch::Tensor& labels);
// Parsed rows [N,G] from captions; -1 where a group cannot be read (no class named, two
// classes named, an unparsable shapes caption).
torch::Tensor parse_captions(const EvaluationSchema& schema,
                             const std::vector<std::string>& captions);
// The class a caption names through the longest whole-word variant match, -1 when none or
// when two different classes are named.
std::int64_t class_named_in(const std::string& caption,
                            const std::vector<std::vector<std::string>>& class_name_variants);

// Image classifier with one softmax head per group: an MLP for 28x28 grey images, a small
// CNN for larger ones.
class ImageEvaluatorImpl : public torch::nn::Module {
 public:
  ImageEvaluatorImpl(std::vector<std::int64_t> image_shape, std::vector<std::int64_t> values);
  std::vector<torch::Tensor> forward(const torch::Tensor& images);  // logits per group
  torch::Tensor predict(const torch::Tensor& images);               // [N,G] int64

 private:
  torch::nn::Sequential body_{nullptr};
  std::vector<torch::nn::Linear> heads_;
};
TORCH_MODULE(ImageEvaluator);

struct EvaluatorOptions {
  std::int64_t epochs = 6;
  std::int64_t max_items = 60000;  // training images used
  std::int64_t batch_size = 128;
  double lr = 1e-3;
};

// Loads `path` when it exists (and matches), otherwise trains on real images and saves it
// there atomically. `report` receives the evaluator's accuracy on the run's test set.
ImageEvaluator image_evaluator(LoadedRun& run, const EvaluationSchema& schema,
                               const std::string& path, const EvaluatorOptions& options,
                               const torch::Device& device, nlohmann::json* report);

struct CoherenceOptions {
  std::int64_t max_items = 2000;  // test items (and prior samples) judged
  std::uint64_t seed = 0;
};

// {"image|text": {"strict", "feats", "feats_share"}, "text|image": ..., "joint": ...}.
// `examples` (when not null) receives the first items' generations for pictures: captions
// generated from images and images generated from captions.
struct CoherenceExamples {
  std::vector<std::string> source_captions;      // captions of the first test items
  torch::Tensor images_from_text;                // [R,K,C,H,W]
  torch::Tensor source_images;                   // [R,C,H,W]
  std::vector<std::string> captions_from_image;  // R greedy captions
};
nlohmann::json coherence_report(LoadedRun& run, const EvaluationSchema& schema,
                                ImageEvaluator& evaluator, const data::DatasetPtr& test,
                                const CoherenceOptions& options, const torch::Device& device,
                                CoherenceExamples* examples = nullptr);

std::string coherence_markdown(const nlohmann::json& report);

}  // namespace mmkt::eval
