#include "mmkt/serve/http.h"

#include <httplib.h>

#include <algorithm>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/serve/page.h"

namespace mmkt::serve {
namespace {

void send(httplib::Response& res, const Reply& reply) {
  res.status = reply.status;
  res.set_content(reply.body, reply.content_type.c_str());
}

// A 405 for `method` on a path that answers only `allowed`.
httplib::Server::Handler not_allowed(const std::string& allowed) {
  return [allowed](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allowed);
    send(res, error_reply(405, req.method + " is not allowed here (use " + allowed + ")"));
  };
}

}  // namespace

struct HttpServer::Impl {
  httplib::Server server;
};

HttpServer::HttpServer(Service& service, const HttpOptions& options)
    : impl_(std::make_unique<Impl>()), options_(options) {
  threads_ = options.threads > 0
                 ? options.threads
                 : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto& s = impl_->server;
  const int pool = threads_;
  s.new_task_queue = [pool] { return new httplib::ThreadPool(static_cast<std::size_t>(pool)); };
  s.set_payload_max_length(options.max_upload_bytes);
  // Replies are small and sent in pieces (headers, body): without TCP_NODELAY, Nagle's
  // algorithm meets the client's delayed ACK and every request waits ~40-80 ms (measured: p50
  // 85 ms for a 0.5 ms query).
  s.set_tcp_nodelay(true);
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(page_html(), "text/html; charset=utf-8");
  });
  s.Get("/api/info",
        [&service](const httplib::Request&, httplib::Response& res) { send(res, service.info()); });
  s.Post("/api/query", [&service](const httplib::Request& req, httplib::Response& res) {
    send(res, service.query(req.body));
  });
  s.Post("/api/zeroshot", [&service](const httplib::Request& req, httplib::Response& res) {
    send(res, service.zeroshot(req.body));
  });
  s.Post("/api/generate", [&service](const httplib::Request& req, httplib::Response& res) {
    send(res, service.generate(req.body));
  });
  s.Get(R"(/api/item/([0-9]+)\.png)",
        [&service](const httplib::Request& req, httplib::Response& res) {
          send(res, service.item_png(req.matches[1].str()));
        });
  for (const auto* path : {"/api/query", "/api/zeroshot", "/api/generate"}) {
    s.Get(path, not_allowed("POST"));
    s.Put(path, not_allowed("POST"));
    s.Delete(path, not_allowed("POST"));
  }
  s.Post("/api/info", not_allowed("GET"));
  s.Post(R"(/api/item/.*)", not_allowed("GET"));
  s.Post("/", not_allowed("GET"));
  // Errors without a body of their own (no route, a body over the limit): JSON too.
  s.set_error_handler([&options](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "not found";
    if (res.status == 413) {
      message = "request body over the limit of " + std::to_string(options.max_upload_bytes) +
                " bytes (--max-upload-mb)";
    } else if (res.status != 404) {
      message = "request refused";
    }
    send(res, error_reply(res.status, message));
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string message = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          message = std::string("internal error: ") + e.what();
        } catch (...) {
        }
        send(res, error_reply(500, message));
      });
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  auto& s = impl_->server;
  int port = options_.port;
  if (port == 0) {
    port = s.bind_to_any_port(options_.host);
    MMKT_CHECK_INPUT(port > 0, "cannot bind to ", options_.host, " on any port");
  } else {
    MMKT_CHECK_INPUT(s.bind_to_port(options_.host, port), "cannot bind to ", options_.host, ":",
                     port, " (in use, or not an address of this machine)");
  }
  return port;
}

void HttpServer::listen() { impl_->server.listen_after_bind(); }

void HttpServer::stop() {
  if (impl_) impl_->server.stop();
}

}  // namespace mmkt::serve
