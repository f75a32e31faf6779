// `mmkt data shapes`: write a procedural shapes dataset (PNG + JSONL manifest).
// `mmkt data photos`: write a folder of user-style photos with captions (own-data experiments).
// `mmkt data bench`: measure the data pipeline's batches/s.
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmkt/bench/bench.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/photo_folder.h"
#include "mmkt/data/shapes.h"

namespace mmkt::app {

void register_data(CLI::App& root, CommonOptions& common) {
  auto* group = root.add_subcommand(
      "data", "datasets: generate shapes or a user-style photo folder, benchmark the pipeline");
  group->require_subcommand(1);

  struct ShapesArgs {
    data::ShapesOptions options;
    std::string out, split = "all";
    bool default_holdout = true;
  };
  auto s = std::make_shared<ShapesArgs>();
  s->options.size = 50000;
  auto* shapes = group->add_subcommand("shapes", "write a CdSprites+-style shapes dataset");
  shapes->add_option("--level", s->options.level, "difficulty 1..5")->capture_default_str();
  shapes->add_option("--n", s->options.size, "number of items")->capture_default_str();
  shapes->add_option("--out", s->out, "output folder")->required();
  shapes->add_option("--image-size", s->options.image_size)->capture_default_str();
  shapes
      ->add_option("--split", s->split,
                   "all | train (without the held-out combinations) | held-out")
      ->capture_default_str();
  shapes->callback([&common, s] {
    auto rt_options = common.runtime;
    const Runtime rt = init_runtime(rt_options);
    s->options.seed = rt.seed;
    s->options.split = data::parse_shapes_split(s->split);
    if (s->options.split != data::ShapesSplit::kAll) {
      s->options.holdout = data::default_shapes_holdout(s->options.level);
    }
    data::write_shapes(s->options, s->out);
  });

  struct PhotoArgs {
    data::PhotoFolderOptions options;
    std::string dataset = "fashion-mnist", root, split = "train";
  };
  auto ph = std::make_shared<PhotoArgs>();
  auto* photos = group->add_subcommand(
      "photos", "write a folder of user-style photos with free-form captions (manifest.jsonl)");
  photos->add_option("--out", ph->options.out, "output folder")->required();
  photos->add_option("--n", ph->options.count, "number of items")->capture_default_str();
  photos->add_option("--dataset", ph->dataset, "fashion-mnist | mnist (the images' source)")
      ->capture_default_str();
  photos->add_option("--root", ph->root,
                     "IDX folder of the source dataset (default location if empty)");
  photos->add_option("--split", ph->split, "train | test split of the source")
      ->capture_default_str();
  photos->add_option("--min-size", ph->options.min_size)->capture_default_str();
  photos->add_option("--max-size", ph->options.max_size)->capture_default_str();
  photos->callback([&common, ph] {
    const Runtime rt = init_runtime(common.runtime);
    ph->options.seed = rt.seed;
    data::LabelledImagesOptions o;
    o.dataset = ph->dataset;
    o.root = ph->root;
    o.split = ph->split;
    o.seed = rt.seed;
    const data::LabelledImageDataset source(o);
    MMKT_CHECK_INPUT(source.class_attributes().has_value(), ph->dataset,
                     ": no class-attribute file");
    std::cout << data::write_photo_folder(source, *source.class_attributes(), ph->options)
              << std::endl;
  });

  auto b = std::make_shared<bench::PipelineOptions>();
  auto* pipeline = group->add_subcommand("bench", "measure the data pipeline (batches/s)");
  pipeline->add_option("--dataset", b->dataset, "fashion-mnist | mnist | shapes")
      ->capture_default_str();
  pipeline->add_option("--batch-size", b->batch_size)->capture_default_str();
  pipeline->add_option("--batches", b->batches, "batches to time after warm-up")
      ->capture_default_str();
  pipeline->add_option("--workers", b->workers, "batcher threads")->capture_default_str();
  pipeline->callback([&common, b] {
    std::cout << bench::time_data_pipeline(*b, init_runtime(common.runtime)).dump(2) << std::endl;
  });
}

}  // namespace mmkt::app
