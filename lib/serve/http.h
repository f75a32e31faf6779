// mmkt serve's HTTP side: cpp-httplib's server on a bounded thread pool, routing to a Service
// (serve/service.h), plus the page (serve/page.h).
//   GET  /                 the page (HTML, CSS and JS in one document; nothing external)
//   GET  /api/info         POST /api/query, /api/zeroshot, /api/generate (JSON)
//   GET  /api/item/ID.png  an indexed image by its row, never by a path
// Any other path is 404, a wrong method on an API path 405 (with Allow), a body over the upload
// limit 413; every error is JSON {"error", "status"}. Handlers never let an exception out: an
// unexpected one is a 500 with its message, and the server keeps serving.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "mmkt/serve/service.h"

namespace mmkt::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";  // 0.0.0.0 exposes the model to the network (README)
  int port = 8080;                 // 0 = any free port
  int threads = 0;                 // request threads; 0 = the hardware's
  std::size_t max_upload_bytes = 8u << 20;
};

class HttpServer {
 public:
  HttpServer(Service& service, const HttpOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the socket; returns the port (the chosen one for port 0). Error when it cannot bind.
  int bind();
  // Serves until stop() (from any thread). bind() first.
  void listen();
  void stop();
  int threads() const { return threads_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HttpOptions options_;
  int threads_ = 1;
};

}  // namespace mmkt::serve
