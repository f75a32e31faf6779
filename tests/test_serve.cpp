// mmkt serve: base64, the JSON API over real HTTP (cpp-httplib's client) on a tiny trained run,
// its errors and concurrency, the command's start-up and Ctrl-C, and the page in a real
// browser (Debian's chromium, headless).
#include <httplib.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/base64.h"
#include "mmkt/io/files.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/index.h"
#include "mmkt/serve/http.h"
#include "mmkt/serve/page.h"
#include "mmkt/serve/service.h"
#include "tiny_runs.h"

using namespace mmkt;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shell(const std::string& command, int* code = nullptr) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  if (!pipe) return out;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) out += buffer.data();
  const int status = pclose(pipe);
  if (code) *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// One tiny trained shapes run (64x64 images, captions, held-out red hearts and blue stars),
// shared by the tests of this file.
const std::string& tiny_run() {
  static const std::string dir = [] {
    const auto d = (fs::path(::testing::TempDir()) / "mmkt_serve_run").string();
    fs::remove_all(d);
    testing_support::train_tiny_shapes_run(d, 21);
    return d;
  }();
  return dir;
}

// A live server on a free loopback port for the duration of a test.
struct LiveServer {
  explicit LiveServer(std::size_t max_upload = 8u << 20) {
    serve::ServiceOptions so;
    so.run_dir = tiny_run();
    so.zero_shot_max_train = 150;
    service = std::make_unique<serve::Service>(so, torch::kCPU);
    serve::HttpOptions ho;
    ho.port = 0;
    ho.threads = 4;
    ho.max_upload_bytes = max_upload;
    server = std::make_unique<serve::HttpServer>(*service, ho);
    port = server->bind();
    listener = std::thread([this] { server->listen(); });
  }
  ~LiveServer() {
    server->stop();
    listener.join();
  }
  httplib::Client client() const { return httplib::Client("127.0.0.1", port); }
  std::unique_ptr<serve::Service> service;
  std::unique_ptr<serve::HttpServer> server;
  int port = 0;
  std::thread listener;
};

json post(httplib::Client& c, const std::string& path, const std::string& body, int* status) {
  const auto res = c.Post(path.c_str(), body, "application/json");
  EXPECT_TRUE(res) << path;
  if (!res) return json();
  *status = res->status;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path << " " << body;
  return json::parse(res->body);
}

std::string png_base64_of_test_item(std::int64_t i) {
  auto run = load_run(tiny_run(), torch::kCPU);
  return io::base64_encode(image::encode_png(run.data.test->images({i})[0]));
}

}  // namespace

TEST(Base64, Rfc4648VectorsAndErrors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(io::base64_encode(plain), encoded);
    EXPECT_EQ(io::base64_decode(encoded, "test"), plain);
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(io::base64_decode(io::base64_encode(all), "test"), all);
  EXPECT_THROW(io::base64_decode("Zm9", "test"), InputError);       // length
  EXPECT_THROW(io::base64_decode("Zm=v", "test"), InputError);      // padding inside
  EXPECT_THROW(io::base64_decode("Zm9v!A==", "test"), InputError);  // alphabet
  EXPECT_THROW(io::base64_decode("Z===", "test"), InputError);      // three pads
}

TEST(Serve, NearestRankPercentiles) {
  EXPECT_EQ(serve::percentile({}, 0.5), 0.0);
  EXPECT_EQ(serve::percentile({5, 1, 3, 2, 4}, 0.5), 3.0);  // rank ceil(2.5) = 3
  EXPECT_EQ(serve::percentile({4, 1, 3, 2}, 0.5), 2.0);     // rank 2
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  EXPECT_EQ(serve::percentile(hundred, 0.99), 99.0);
  EXPECT_EQ(serve::percentile(hundred, 1.0), 100.0);
  EXPECT_EQ(serve::percentile(hundred, 0.001), 1.0);
}

TEST(Serve, PageLoadsNothingFromOutside) {
  const auto& page = serve::page_html();
  EXPECT_NE(page.find("<title>mmkt serve</title>"), std::string::npos);
  for (const auto* external : {"http://", "https://", "//cdn", "@import", "fonts.g"}) {
    EXPECT_EQ(page.find(external), std::string::npos) << external;
  }
}

TEST(Serve, ApiAnswersOverHttp) {
  LiveServer live;
  auto c = live.client();
  int status = 0;

  const auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("mmkt serve"), std::string::npos);

  const auto info_res = c.Get("/api/info");
  ASSERT_TRUE(info_res);
  const auto info = json::parse(info_res->body);
  EXPECT_EQ(info["index"]["images"].get<int>(), 120);
  EXPECT_EQ(info["index"]["captions"].get<int>(), 120);
  EXPECT_TRUE(info["zero_shot"]["available"].get<bool>());
  EXPECT_EQ(info["model"]["modalities"].size(), 2u);

  // A text query: the same ranking as query::answer computes in this process.
  auto q = post(c, "/api/query", R"({"text": "a small blue star", "top": 5})", &status);
  ASSERT_EQ(status, 200) << q.dump();
  ASSERT_EQ(q["results"].size(), 5u);
  {
    auto run = load_run(tiny_run(), torch::kCPU);
    const auto index = query::open_index(run, tiny_run(), "image", "test", torch::kCPU);
    const auto a =
        query::answer(run, index, {"a small blue star", "", ""}, {5, "cosine"}, torch::kCPU);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(q["results"][i]["item"].get<std::int64_t>(), a.hits[i].item);
      EXPECT_NEAR(q["results"][i]["score"].get<double>(), a.hits[i].score, 1e-5);
    }
  }
  EXPECT_GT(q["latency_ms"].get<double>(), 0.0);
  // Each image hit links to its picture, served by id, upscaled to at least 112 px.
  const auto url = q["results"][0]["url"].get<std::string>();
  EXPECT_EQ(url, "/api/item/" + std::to_string(q["results"][0]["item"].get<int>()) + ".png");
  const auto png = c.Get(url.c_str());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->status, 200);
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  const cv::Mat decoded = cv::imdecode(
      cv::Mat(1, static_cast<int>(png->body.size()), CV_8UC1, const_cast<char*>(png->body.data())),
      cv::IMREAD_UNCHANGED);
  EXPECT_GE(decoded.rows, 112);

  // An uploaded image: nearest captions, zero-shot with evidence, captions generated.
  const auto image = png_base64_of_test_item(3);
  q = post(c, "/api/query",
           json{{"image", "data:image/png;base64," + image}, {"target", "text"}, {"top", 3}}.dump(),
           &status);
  ASSERT_EQ(status, 200) << q.dump();
  EXPECT_TRUE(q["results"][0].contains("caption"));
  auto zs = post(c, "/api/zeroshot", json{{"image", image}}.dump(), &status);
  ASSERT_EQ(status, 200) << zs.dump();
  for (const auto* m : {"dap", "iap", "text"}) {
    ASSERT_TRUE(zs["methods"].contains(m)) << m;
    EXPECT_FALSE(zs["methods"][m]["ranking"].empty()) << m;
  }
  EXPECT_FALSE(zs["methods"]["dap"]["attributes"].empty());
  auto gen = post(c, "/api/generate", R"({"text": "a red heart", "n": 4})", &status);
  ASSERT_EQ(status, 200) << gen.dump();
  const auto grid = gen["grid_png"].get<std::string>();
  ASSERT_EQ(grid.rfind("data:image/png;base64,", 0), 0u);
  EXPECT_GT(io::base64_decode(grid.substr(22), "grid").size(), 100u);
  gen = post(c, "/api/generate", json{{"image", image}, {"n", 2}, {"beam", 2}}.dump(), &status);
  ASSERT_EQ(status, 200) << gen.dump();
  EXPECT_EQ(gen["captions"].size(), 2u);
}

TEST(Serve, BadRequestsGetJsonErrorsAndTheServerKeepsServing) {
  LiveServer live(64 * 1024);
  auto c = live.client();
  int status = 0;
  const auto expect_error = [&](const std::string& path, const std::string& body, int code,
                                const std::string& words) {
    const auto j = post(c, path, body, &status);
    EXPECT_EQ(status, code) << body << " -> " << j.dump();
    EXPECT_NE(j.value("error", "").find(words), std::string::npos) << body << " -> " << j.dump();
  };
  expect_error("/api/query", "{\"text\": ", 400, "malformed JSON");
  expect_error("/api/query", "[1, 2]", 400, "JSON object");
  expect_error("/api/query", R"({"text": "a heart", "colour": "red"})", 400,
               "unknown field 'colour'");
  expect_error("/api/query", R"({"text": ""})", 400, "empty");
  expect_error("/api/query", R"({"text": "   "})", 400, "empty");
  expect_error("/api/query", "{\"text\": \"caf\xC3\"}", 400, "malformed JSON");  // not UTF-8
  expect_error("/api/query", R"({"text": "a heart", "image": "Zm9v"})", 400, "exactly one");
  expect_error("/api/query", R"({"text": "a heart", "top": 0})", 400, "'top'");
  expect_error("/api/query", R"({"text": "a heart", "top": "5"})", 400, "integer");
  expect_error("/api/query", R"({"image": "aGVsbG8gd29ybGQ="})", 400, "uploaded image");
  expect_error("/api/query", R"({"image": "not base64!"})", 400, "base64");
  expect_error("/api/zeroshot", R"({"image": "aGVsbG8gd29ybGQ=", "method": "knn"})", 400,
               "'method'");
  expect_error("/api/generate", R"({"text": "a heart", "n": 1000})", 400, "'n'");
  // Over the upload limit: 413, as JSON.
  const std::string big = "{\"image\": \"" + std::string(100 * 1024, 'A') + "\"}";
  expect_error("/api/query", big, 413, "over the limit");
  // Unknown paths, ids that are not rows, paths that try to leave: 404, and nothing else.
  for (const auto* path :
       {"/api/nothing", "/api/item/120.png", "/api/item/abc.png", "/api/item/../../etc/passwd",
        "/api/item/%2e%2e%2fconfig.json", "/../../etc/passwd", "/config.json"}) {
    const auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->body.find("\"seed\""), std::string::npos) << path;
    EXPECT_NE(res->body.find("\"error\""), std::string::npos) << path << ": " << res->body;
  }
  // A wrong method: 405 with Allow.
  const auto get_query = c.Get("/api/query");
  ASSERT_TRUE(get_query);
  EXPECT_EQ(get_query->status, 405);
  EXPECT_EQ(get_query->get_header_value("Allow"), "POST");
  // Still serving.
  const auto info = c.Get("/api/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, 200);
  EXPECT_GT(json::parse(info->body)["latency_ms"]["query"]["count"].get<int>(), 5);
}

TEST(Serve, ConcurrentClientsGetTheSameAnswers) {
  LiveServer live;
  const std::vector<std::string> texts = {"a small blue star", "a big red heart", "a green square",
                                          "a small yellow circle"};
  std::vector<json> expected;
  {
    auto c = live.client();
    int status = 0;
    for (const auto& t : texts) {
      expected.push_back(
          post(c, "/api/query", json{{"text", t}, {"top", 8}}.dump(), &status)["results"]);
    }
  }
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> clients;
  for (int k = 0; k < 8; ++k) {
    clients.emplace_back([&, k] {
      httplib::Client c("127.0.0.1", live.port);
      for (int i = 0; i < 20; ++i) {
        const auto& t = texts[static_cast<std::size_t>((k + i) % texts.size())];
        const auto res =
            c.Post("/api/query", json{{"text", t}, {"top", 8}}.dump(), "application/json");
        if (!res || res->status != 200) {
          ++failures;
          continue;
        }
        const auto got = json::parse(res->body)["results"];
        const auto& want = expected[static_cast<std::size_t>((k + i) % texts.size())];
        for (std::size_t r = 0; r < got.size(); ++r) {
          if (got[r]["item"] != want[r]["item"]) ++mismatches;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Serve, CommandPrintsItsUrlAndStopsOnCtrlC) {
  const auto dir = fs::path(::testing::TempDir()) / "mmkt_serve_cli";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto log = (dir / "serve.log").string();
  const auto pid_file = (dir / "pid").string();
  shell("(" + std::string(MMKT_BINARY) + " serve " + tiny_run() + " --port 0 > " + log +
        " 2>&1 & echo $! > " + pid_file + ")");
  std::smatch m;
  std::string out;
  const std::regex url(R"(http://127\.0\.0\.1:([0-9]+)/)");
  for (int i = 0; i < 600 && !std::regex_search(out, m, url); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    out = io::file_exists(log) ? io::read_file(log) : "";
  }
  ASSERT_TRUE(std::regex_search(out, m, url)) << out;
  const int port = std::stoi(m[1].str());
  httplib::Client c("127.0.0.1", port);
  const auto info = c.Get("/api/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, 200);
  auto pid = io::read_file(pid_file);
  pid.erase(pid.find_last_not_of(" \n") + 1);
  int code = -1;
  shell("kill -INT " + pid + "; for i in $(seq 100); do kill -0 " + pid +
            " 2>/dev/null || exit 0; sleep 0.1; done; exit 1",
        &code);
  EXPECT_EQ(code, 0) << "mmkt serve did not stop on SIGINT";
  EXPECT_NE(io::read_file(log).find("serve: stopping"), std::string::npos) << io::read_file(log);
}

TEST(Serve, BrowserShowsResultsOfAQueryInTheUrl) {
  int code = -1;
  shell("command -v chromium", &code);
  if (code != 0) GTEST_SKIP() << "chromium is not installed (bash .ci/setup installs it)";
  LiveServer live;
  const auto dir = fs::path(::testing::TempDir()) / "mmkt_serve_browser";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string url =
      "'http://127.0.0.1:" + std::to_string(live.port) + "/?q=a%20small%20blue%20star'";
  const std::string chromium =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu "
      "--user-data-dir=" +
      (dir / "profile").string() + " --virtual-time-budget=15000 ";
  // 1-3: the page loads, runs the query of ?q=, and shows the hits with their classes.
  const auto dom = shell(chromium + "--dump-dom " + url, &code);
  EXPECT_EQ(code, 0) << dom;
  const std::regex hit(
      R"re(<figure class="hit" data-class="([^"]+)" data-item="([0-9]+)"><img src="/api/item/([0-9]+)\.png")re");
  const auto hits =
      std::distance(std::sregex_iterator(dom.begin(), dom.end(), hit), std::sregex_iterator());
  EXPECT_EQ(hits, 24) << dom.substr(0, 4000);
  std::smatch first;
  ASSERT_TRUE(std::regex_search(dom, first, hit)) << dom.substr(0, 4000);
  EXPECT_EQ(first[2].str(), first[3].str());
  EXPECT_NE(dom.find("indexed images"), std::string::npos);  // the run's description arrived
  // 4: a screenshot into the test's output folder.
  const auto png = (dir / "serve.png").string();
  shell(chromium + "--window-size=1280,900 --screenshot=" + png + " " + url, &code);
  ASSERT_TRUE(fs::exists(png));
  const auto shot = cv::imread(png);
  EXPECT_EQ(shot.cols, 1280);
  EXPECT_GT(fs::file_size(png), 10000u);
}
