#include "mmkt/demo/demo.h"

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/distill/pipeline.h"
#include "mmkt/eval/pictures.h"
#include "mmkt/eval/report.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/files.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/generate.h"
#include "mmkt/query/index.h"
#include "mmkt/query/inputs.h"
#include "mmkt/run/config.h"
#include "mmkt/train/trainer.h"

namespace mmkt::demo {

namespace fs = std::filesystem;

nlohmann::json demo_config(const DemoOptions& o) {
  // The recipe of experiments/fashion_strong2.json (chosen on validation data with validation
  // classes: experiments/fashion_tune.sh), shortened: conv image networks, conv text networks
  // over word tokens, word dropout on the encoders' captions, the contrastive image-caption term.
  auto j = default_config_json();
  j["seed"] = 0;
  j["data"]["dataset"] = "fashion-mnist";
  j["data"]["zero_shot_split"] = true;
  j["data"]["validation"] = 2000;
  if (!o.dataset_root.empty()) j["data"]["root"] = o.dataset_root;
  j["tokenizer"]["type"] = "word";
  j["tokenizer"]["vocab_size"] = 512;
  j["model"]["type"] = "jmvae";
  j["model"]["latent_dim"] = 32;
  j["model"]["alpha"] = 0.1;
  j["model"]["modalities"] = nlohmann::json::array(
      {{{"name", "image"}, {"kind", "image"}, {"encoder", "conv"}, {"decoder", "conv"},
        {"likelihood", "bernoulli"}, {"channels", 32}, {"hidden", {512}}},
       {{"name", "text"}, {"kind", "text"}, {"encoder", "conv"}, {"decoder", "conv"},
        {"likelihood", "categorical"}, {"hidden", {256}}, {"rnn_hidden", 64},
        {"embedding_dim", 64}}});
  j["triplet"]["weight"] = 20.0;
  j["triplet"]["kind"] = "contrastive";
  j["triplet"]["temperature"] = 0.1;
  j["triplet"]["warmup_epochs"] = 1.0;
  j["train"]["epochs"] = o.epochs;
  j["train"]["batch_size"] = 100;
  j["train"]["lr"] = 0.001;
  j["train"]["warmup_epochs"] = 1.5;
  j["train"]["token_dropout"] = 0.25;
  j["train"]["max_steps_per_epoch"] = o.steps_per_epoch;
  return j;
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}
std::string f3(double v) { return fixed(v, 3); }

// The file that marks a folder as the demo's own (written first, so that a demo stopped half
// way is still recognised).
constexpr const char* kDemoMarker = ".mmkt-demo";

// The demo owns its folder: it is replaced only when it is empty or an earlier demo's (its
// marker, or demo.json from before the marker). Any other folder, a trained run included, is
// refused untouched.
void fresh_run_dir(const std::string& dir) {
  if (fs::exists(dir)) {
    const fs::path p(dir);
    const bool demo_owned = fs::exists(p / kDemoMarker) || fs::exists(p / "demo.json");
    MMKT_CHECK_INPUT(
        fs::is_directory(p) && (fs::is_empty(p) || demo_owned), dir,
        ": exists and is not an earlier demo's folder (the demo replaces only its own); "
        "choose another --run");
    fs::remove_all(dir);
  }
  fs::create_directories(dir);
  io::write_file_atomic((fs::path(dir) / kDemoMarker).string(),
                        "written by mmkt demo: this folder is replaced by the next demo run\n");
}

}  // namespace

nlohmann::json run_demo(const DemoOptions& o, const Runtime& rt) {
  const auto start = Clock::now();
  const std::string dir = o.run_dir;
  fresh_run_dir(dir);
  nlohmann::json figures;

  log::info(
      "demo 1/4: training a JMVAE-kl with contrastive image-caption constraints on Fashion-MNIST + "
      "captions (",
      o.epochs, " epochs of ", o.steps_per_epoch, " steps)");
  const auto resolved = demo_config(o);
  const auto config = config_from_json(resolved, "demo");
  auto t = Clock::now();
  const auto summary = train::train_run(config, resolved, dir, train::RunStart::kFresh, rt);
  figures["seconds"]["train"] = since(t);

  log::info("demo 2/4: retrieval and zero-shot on the test set, with pictures");
  t = Clock::now();
  auto run = load_run(dir, rt.device);
  eval::EvalOptions eo;
  eo.metrics = {"retrieval", "zeroshot", "pictures"};
  eo.seed = rt.seed;
  const auto report = eval::evaluate_run(run, eo, dir + "/eval", rt.device);
  figures["seconds"]["eval"] = since(t);

  // The student and method of experiments/distill_strong.sh: kd=1,mse=1 was chosen there on the
  // teacher's validation split (experiments/results/distill_strong/chosen.txt).
  log::info("demo 3/4: distilling an image student (conv:8:128, Hinton KD + latent-mean MSE)");
  t = Clock::now();
  distill::DistillOptions d;
  d.teacher_dir = dir;
  d.method = "kd=1,mse=1";
  d.student = "conv:8:128";
  d.out_dir = dir + "/distill/student";
  d.train.epochs = o.distill_epochs;
  d.max_items = o.distill_items;
  d.eval.probe = false;
  const auto distilled = distill::run_distillation(d, rt);
  figures["seconds"]["distill"] = since(t);

  log::info("demo 4/4: a text query over the indexed test images and images drawn for a caption");
  t = Clock::now();
  const std::string demo_dir = dir + "/demo";
  fs::create_directories(demo_dir);
  auto index = query::open_index(
      run, dir, query::modality_of_kind(run, models::ModalityKind::kImage), "test", rt.device);
  const query::Question question{o.query, ""};
  const query::AnswerOptions options{12, "cosine"};
  const auto answer = query::answer(run, index, question, options, rt.device);
  const double query_ms = answer.encode_ms + answer.search_ms;
  query::write_answer_png(run, index, question, answer, demo_dir + "/query.png");
  auto query_json = query::answer_json(run, index, question, options, answer);
  query_json["latency_ms"] = query_ms;
  io::write_file_atomic(demo_dir + "/query.json", query_json.dump(2) + "\n");
  const auto drawn =
      query::images_from_text(run, query::text_input(run, o.draw, rt.device), 16, rt.seed);
  image::write_png(
      demo_dir + "/generated.png",
      image::make_grid(image::upscale_nearest(drawn, image::viewing_scale(drawn.size(2))), 4));
  figures["seconds"]["query"] = since(t);
  figures["seconds"]["total"] = since(start);

  // The report.
  const auto& r = report["retrieval"];
  const auto& z = report["zeroshot"];
  const auto& s = distilled["student"];
  std::map<std::string, int> top_classes;  // class -> count among the top 12
  for (const auto& h : query_json["results"]) ++top_classes[h["class"].get<std::string>()];
  std::ostringstream histogram;
  for (const auto& [name, count] : top_classes)
    histogram << (histogram.tellp() > 0 ? ", " : "") << count << " " << name;
  std::ostringstream md;
  md << "# mmkt demo\n\n"
     << "JMVAE-kl + contrastive image-caption constraints, Fashion-MNIST with generated captions, "
     << o.epochs << " epochs of " << o.steps_per_epoch << " steps ("
     << fixed(figures["seconds"]["train"].get<double>() / 60.0, 1) << " min); unseen classes: ";
  for (std::size_t i = 0; i < z["unseen"].size(); ++i)
    md << (i ? ", " : "") << z["unseen"][i].get<std::string>();
  md << ". Test set: 10,000 items.\n\n"
     << "| retrieval (cosine) | queries | mAP | random mAP | P@10 |\n| --- | --- | ---: | ---: | "
        "---: |\n";
  for (const std::string task : {"text->image", "image->text", "image->image"}) {
    const auto& c = r[task]["cosine"];
    md << "| " << task << " | all | " << f3(c["mAP"]) << " | " << f3(c["random_mAP"]) << " | "
       << f3(c["P@10"]) << " |\n";
    if (!c.contains("groups")) continue;
    for (const std::string group : {"seen", "unseen"}) {
      const auto& g = c["groups"][group];
      md << "| " << task << " | " << group << " classes | " << f3(g["mAP"]) << " | "
         << f3(g["random_mAP"]) << " | " << f3(g["P@10"]) << " |\n";
    }
  }
  md << "\n| zero-shot (unseen classes) | DAP | IAP | text |\n| --- | ---: | ---: | ---: |\n"
     << "| ZSL accuracy | " << f3(z["dap"]["zsl"]) << " | " << f3(z["iap"]["zsl"]) << " | "
     << f3(z["text"]["zsl"]) << " |\n\n"
     << distill::comparison_markdown(distill::comparison_rows({distilled})) << "\n"
     << "The student has " << s["parameters"].get<std::int64_t>() << " parameters ("
     << fixed(100.0 * s["parameter_ratio"].get<double>(), 1)
     << "% of the teacher's image encoder) and embeds " << fixed(s["speedup"].get<double>(), 1)
     << "x as many images per second.\n\n"
     << "Query \"" << o.query << "\": the classes of the top 12 test images: " << histogram.str()
     << " (" << fixed(query_ms, 2) << " ms after the index was loaded).\n\n"
     << "Pictures:\n"
     << "- " << demo_dir << "/query.png: the top 12 images for \"" << o.query << "\"\n"
     << "- " << demo_dir << "/generated.png: 16 images drawn for \"" << o.draw << "\"\n"
     << "- " << dir
     << "/eval/pictures/: reconstructions, text->image and image->text rows, latent PCA, "
        "retrieval contact sheet, zero-shot confusion matrices\n\n"
     << "Written: " << dir << "/{config.json, checkpoint.pt, log.jsonl, summary.json}, " << dir
     << "/eval/report.{json,md}, " << dir << "/distill/student/, " << dir << "/index/, " << demo_dir
     << "/\n\n"
     << "Total: " << fixed(figures["seconds"]["total"].get<double>() / 60.0, 1) << " min.\n";
  io::write_file_atomic(dir + "/demo.md", md.str());
  figures["retrieval_text_to_image_map"] = r["text->image"]["cosine"]["mAP"];
  if (r["text->image"]["cosine"].contains("groups")) {
    figures["retrieval_text_to_image_map_seen"] =
        r["text->image"]["cosine"]["groups"]["seen"]["mAP"];
    figures["retrieval_text_to_image_map_unseen"] =
        r["text->image"]["cosine"]["groups"]["unseen"]["mAP"];
  }
  figures["zero_shot"] = {
      {"dap", z["dap"]["zsl"]}, {"iap", z["iap"]["zsl"]}, {"text", z["text"]["zsl"]}};
  figures["student"] = {{"parameters", s["parameters"]}, {"speedup", s["speedup"]}};
  figures["query_ms"] = query_ms;
  figures["test_elbo"] = summary.contains("test") ? summary["test"] : nlohmann::json();
  io::write_file_atomic(dir + "/demo.json", figures.dump(2) + "\n");
  return figures;
}

}  // namespace mmkt::demo
