// The dashboard page's files (server/dashboard/page/*), carried in the binary: a build step
// (cmake/embed_files.cmake) writes their bytes into a generated source. No file is read at run
// time and nothing is fetched from elsewhere (no CDN).
#ifndef QCAL_SERVER_DASHBOARD_EMBEDDED_FILES_H_
#define QCAL_SERVER_DASHBOARD_EMBEDDED_FILES_H_

#include <cstdint>

namespace qcal::server {

struct EmbeddedFile {
  // The file's base name, e.g. "dashboard.js".
  const char* name;
  const char* data;
  int64_t size;
};

extern const EmbeddedFile kEmbeddedFiles[];
extern const int kEmbeddedFileCount;

}  // namespace qcal::server

#endif  // QCAL_SERVER_DASHBOARD_EMBEDDED_FILES_H_
