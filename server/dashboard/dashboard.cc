#include "server/dashboard/dashboard.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/dashboard/embedded_files.h"

namespace qcal::server {
namespace {

constexpr absl::string_view kPage = "/dashboard";

// By extension; the page has no other kinds of file.
const char* ContentType(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

const EmbeddedFile* FindFile(absl::string_view name) {
  for (int i = 0; i < kEmbeddedFileCount; ++i) {
    if (name == kEmbeddedFiles[i].name) return &kEmbeddedFiles[i];
  }
  return nullptr;
}

}  // namespace

HttpPages Dashboard::Pages() const {
  return {.serves = &Dashboard::Serves,
          .answer = [this](absl::string_view path) { return Answer(path); }};
}

bool Dashboard::Serves(absl::string_view path) {
  return path == "/" || path == kPage || absl::StartsWith(path, absl::StrCat(kPage, "/")) ||
         DashboardApi::Serves(path);
}

HttpAnswer Dashboard::Answer(absl::string_view path) const {
  if (DashboardApi::Serves(path)) return api_.Answer(path);
  if (path == "/") {
    return {.status = 302,
            .content_type = "text/plain; charset=utf-8",
            .body = "see /dashboard\n",
            .location = std::string(kPage)};
  }
  // /dashboard is index.html; its files are /dashboard/NAME.
  const absl::string_view name =
      path == kPage ? absl::string_view("index.html") : path.substr(kPage.size() + 1);
  const EmbeddedFile* file = FindFile(name);
  if (file == nullptr) {
    return {.status = 404,
            .content_type = "text/plain; charset=utf-8",
            .body = absl::StrCat("no page at ", path, "; the dashboard is at /dashboard\n")};
  }
  return {.status = 200,
          .content_type = ContentType(name),
          .body = std::string(file->data, static_cast<size_t>(file->size))};
}

}  // namespace qcal::server
