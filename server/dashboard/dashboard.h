// The dashboard in the server (README, "Dashboard"): a page at /dashboard (/ redirects to it)
// that lists the models and shows a quantizer's histogram with each method's amax, and the JSON
// API it reads (dashboard_api.h). Served on the HTTP address beside /metrics, and guarded as
// /metrics is (HttpSecurity).
//
//   Dashboard dashboard(core);
//   HttpServer::Start(listen, registry, security, dashboard.Pages());
#ifndef QCAL_SERVER_DASHBOARD_DASHBOARD_H_
#define QCAL_SERVER_DASHBOARD_DASHBOARD_H_

#include "absl/strings/string_view.h"
#include "server/core/calibration_core.h"
#include "server/dashboard/dashboard_api.h"
#include "server/http/http_server.h"

namespace qcal::server {

class Dashboard {
 public:
  explicit Dashboard(CalibrationCore& core) : api_(core) {}

  // The pages for HttpServer::Start; they refer to this object, which must outlive the server.
  HttpPages Pages() const;

  // "/", "/dashboard", the page's files under /dashboard/, and the API under /api/.
  static bool Serves(absl::string_view path);
  // "/": a redirect (302) to /dashboard; the page and its files; the API's answers; 404 for a
  // file the page does not have.
  HttpAnswer Answer(absl::string_view path) const;

 private:
  DashboardApi api_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_DASHBOARD_DASHBOARD_H_
