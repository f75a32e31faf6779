#include "mmkt/models/batch_peers.h"

namespace mmkt::models {
namespace {
thread_local BatchPeers* t_peers = nullptr;
}  // namespace

BatchPeers* batch_peers() { return t_peers; }

BatchPeersGuard::BatchPeersGuard(BatchPeers* peers) : saved_(t_peers) { t_peers = peers; }
BatchPeersGuard::~BatchPeersGuard() { t_peers = saved_; }

}  // namespace mmkt::models
