#include "mmkt/dist/communicator.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"

namespace mmkt::dist {
namespace {
using Clock = std::chrono::steady_clock;

int env_int(const char* name, int fallback, int min_value, int max_value) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  char* end = nullptr;
  const long v = std::strtol(raw, &end, 10);
  MMKT_CHECK_INPUT(end && *end == '\0' && v >= min_value && v <= max_value, "environment ", name,
                   "='", raw, "': expected an integer in ", min_value, "..", max_value);
  return static_cast<int>(v);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The network interface Gloo binds to. GLOO_SOCKET_IFNAME (PyTorch's variable) picks one by
// name; a loopback master means a one-machine group; otherwise the address this machine's
// hostname resolves to (Gloo falls back to loopback when it does not resolve).
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (is_loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return err.what_without_backtrace();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

c10::intrusive_ptr<c10d::ProcessGroup> make_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                  int rank, int world_size,
                                                  std::chrono::milliseconds timeout,
                                                  const std::string& host) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(gloo_device(host));
  options->threads = 2;  // PyTorch's default (1 thread was no faster here, tried by hand)
  // Keys of this group live under their own prefix, so the store can carry our own keys.
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo/", store);
  return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world_size, options);
}
}  // namespace

DistEnv env_from_environment() {
  DistEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  env.rank = env_int("RANK", 0, 0, env.world_size - 1);
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0, env.world_size - 1);
  env.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) env.master_addr = addr;
  if (env.world_size > 1) {
    MMKT_CHECK_INPUT(std::getenv("RANK") != nullptr, "environment: WORLD_SIZE=", env.world_size,
                     " but RANK is not set");
  }
  return env;
}

Communicator::Communicator(const DistEnv& env, std::chrono::milliseconds timeout)
    : rank_(env.rank), world_size_(env.world_size), timeout_(timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = static_cast<std::size_t>(env.world_size);
  options.waitWorkers = true;
  options.timeout = timeout;
  const auto start = Clock::now();
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    group_ = make_group(store_, rank_, world_size_, timeout_, env.master_addr);
  } catch (const std::exception&) {
    fail("distributed: rank ", rank_, " of ", world_size_, " could not join the group at ",
         env.master_addr, ":", env.master_port, " within ", timeout.count() / 1000.0,
         " s (is every worker started, and MASTER_ADDR/MASTER_PORT the same for all?): ",
         what_of(std::current_exception()));
  }
  log::debug("distributed: rank ", rank_, "/", world_size_, " joined in ",
             std::chrono::duration<double>(Clock::now() - start).count(), " s");
}

Communicator::Communicator(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                           std::chrono::milliseconds timeout, const std::string& gloo_host)
    : rank_(rank), world_size_(world_size), timeout_(timeout), store_(std::move(store)) {
  store_->setTimeout(timeout);
  group_ = make_group(store_, rank_, world_size_, timeout_, gloo_host);
}

Communicator::~Communicator() = default;

void Communicator::wait_for(const char* what,
                            const std::vector<c10::intrusive_ptr<c10d::Work>>& work) {
  for (const auto& w : work) {
    try {
      w->wait(timeout_);
    } catch (const std::exception&) {
      fail("distributed: rank ", rank_, " of ", world_size_, ": the ", what,
           " failed; another worker stopped, stalled for more than ", timeout_.count() / 1000.0,
           " s (--dist-timeout), or the network failed. Gloo: ", what_of(std::current_exception()));
    }
  }
}

void Communicator::broadcast(std::vector<torch::Tensor> tensors, int root) {
  const auto start = Clock::now();
  std::vector<c10::intrusive_ptr<c10d::Work>> work;
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (auto& t : tensors) {
    MMKT_CHECK(t.is_contiguous(), "broadcast needs contiguous tensors");
    std::vector<torch::Tensor> one{t};
    work.push_back(group_->broadcast(one, options));
  }
  wait_for("broadcast", work);
  comm_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::allreduce_sum(std::vector<torch::Tensor> tensors, std::int64_t bucket_bytes) {
  const auto start = Clock::now();
  // Consecutive tensors of one dtype and device share a flat bucket up to bucket_bytes.
  std::vector<std::vector<torch::Tensor>> buckets;
  std::int64_t bytes_in_last = 0;
  for (const auto& t : tensors) {
    const auto bytes = t.numel() * static_cast<std::int64_t>(t.element_size());
    const bool fits = !buckets.empty() && bytes_in_last + bytes <= bucket_bytes &&
                      buckets.back().front().scalar_type() == t.scalar_type() &&
                      buckets.back().front().device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      bytes_in_last = 0;
    }
    buckets.back().push_back(t);
    bytes_in_last += bytes;
  }
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> work;
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> views;
    for (const auto& t : bucket) views.push_back(t.reshape(-1));
    flats.push_back(bucket.size() == 1 ? views.front().contiguous().clone() : torch::cat(views));
    std::vector<torch::Tensor> one{flats.back()};
    work.push_back(group_->allreduce(one));
  }
  wait_for("gradient allreduce", work);
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    std::int64_t offset = 0;
    for (auto& t : buckets[b]) {
      t.copy_(flats[b].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
  comm_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::barrier() {
  const auto start = Clock::now();
  wait_for("barrier", {group_->barrier()});
  comm_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

void Communicator::publish(const std::string& key, const std::string& bytes) {
  store_->set("mmkt/" + key, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

std::string Communicator::fetch(const std::string& key) {
  try {
    const auto value = store_->get("mmkt/" + key);  // waits up to the store's timeout
    return std::string(value.begin(), value.end());
  } catch (const std::exception&) {
    fail("distributed: rank ", rank_, " of ", world_size_, " waited ", timeout_.count() / 1000.0,
         " s for '", key,
         "' from rank 0, which did not publish it (did rank 0 stop with an "
         "error?): ",
         what_of(std::current_exception()));
  }
}

namespace {

// Test hook: MMKT_FAULT_KILL="RANK:STEP" makes that rank kill itself (SIGKILL) as it enters the
// gradient average of step STEP + 1, i.e. right after optimizer step STEP, so that a test can
// check that the other workers stop with an error instead of hanging. Inert without the variable.
void maybe_inject_fault(const Communicator& comm) {
  static const char* spec = std::getenv("MMKT_FAULT_KILL");
  static std::int64_t averages = 0;
  if (spec == nullptr) return;
  ++averages;
  int rank = -1;
  long long at = -1;
  if (std::sscanf(spec, "%d:%lld", &rank, &at) == 2 && rank == comm.rank() && at + 1 == averages) {
    std::raise(SIGKILL);
  }
}

}  // namespace

void average_gradients(Communicator& comm, const std::vector<torch::Tensor>& parameters,
                       std::int64_t local_rows, std::int64_t global_rows,
                       std::int64_t bucket_bytes) {
  maybe_inject_fault(comm);
  MMKT_CHECK(global_rows > 0 && local_rows >= 0 && local_rows <= global_rows,
             "average_gradients: local rows ", local_rows, " of ", global_rows);
  const double weight = static_cast<double>(local_rows) / static_cast<double>(global_rows);
  std::vector<torch::Tensor> trained;
  for (const auto& p : parameters) {
    if (p.requires_grad()) trained.push_back(p);
  }
  // Which parameters have a gradient on some rank (one process would have one from those rows).
  auto defined = torch::zeros({static_cast<std::int64_t>(trained.size())}, torch::kFloat32);
  for (std::size_t i = 0; i < trained.size(); ++i) {
    if (trained[i].grad().defined() && local_rows > 0) defined[static_cast<std::int64_t>(i)] = 1.0f;
  }
  std::vector<torch::Tensor> grads;
  grads.reserve(trained.size());
  for (const auto& p : trained) {
    auto& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    if (local_rows == 0) {
      g.zero_();
    } else if (weight != 1.0) {
      g.mul_(weight);
    }
    grads.push_back(g);
  }
  grads.push_back(defined);
  comm.allreduce_sum(grads, bucket_bytes);
  const auto* any = defined.data_ptr<float>();
  for (std::size_t i = 0; i < trained.size(); ++i) {
    if (any[i] == 0.0f) trained[i].mutable_grad() = torch::Tensor();
  }
}

namespace {

// Rows [offset, offset + n) of a global batch of `global_rows`, from every rank: each rank puts
// its rows into zeros and the sum is the whole batch (an allgather for uneven shards).
torch::Tensor gather_rows(Communicator& comm, const torch::Tensor& local, std::int64_t offset,
                          std::int64_t global_rows) {
  auto sizes = local.sizes().vec();
  sizes[0] = global_rows;
  auto full = torch::zeros(sizes, local.options());
  full.narrow(0, offset, local.size(0)).copy_(local.detach());
  comm.allreduce_sum({full}, std::int64_t{1} << 30);
  return full;
}

// all_rows as an autograd function (see StepPeers in communicator.h).
struct AllRowsFunction : torch::autograd::Function<AllRowsFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local,
                               Communicator* comm, std::int64_t offset, std::int64_t global_rows) {
    ctx->saved_data["comm"] = reinterpret_cast<std::int64_t>(comm);
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rows"] = local.size(0);
    return gather_rows(*comm, local, offset, global_rows);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    const auto offset = ctx->saved_data["offset"].toInt();
    const auto rows = ctx->saved_data["rows"].toInt();
    auto weighted = (grads[0] * static_cast<double>(rows)).contiguous();
    comm->allreduce_sum({weighted}, std::int64_t{1} << 30);
    return {weighted.narrow(0, offset, rows) / static_cast<double>(rows), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

StepPeers::StepPeers(Communicator& comm, std::int64_t offset, std::int64_t local_rows,
                     std::int64_t global_rows)
    : comm_(comm), offset_(offset), local_rows_(local_rows), global_rows_(global_rows) {
  MMKT_CHECK(local_rows > 0 && offset >= 0 && offset + local_rows <= global_rows,
             "StepPeers: rows [", offset, ", ", offset + local_rows, ") of ", global_rows);
}

torch::Tensor StepPeers::all_rows(const torch::Tensor& local) {
  MMKT_CHECK(local.size(0) == local_rows_, "all_rows: ", local.size(0), " rows, the shard has ",
             local_rows_);
  if (!local.requires_grad()) return gather_rows(comm_, local, offset_, global_rows_);
  return AllRowsFunction::apply(local, &comm_, offset_, global_rows_);
}

double StepPeers::sum(double value) {
  auto t = torch::full({1}, value, torch::kFloat64);
  comm_.allreduce_sum({t}, 64);
  return t.item<double>();
}

}  // namespace mmkt::dist
