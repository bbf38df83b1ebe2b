// Model-affine routing: every call that names a model carries the name as gRPC metadata, so that
// a router in front of several qcal-server replicas (nginx's `hash $http_qcal_model consistent`,
// deploy/nginx/qcal.conf) sends all of a model's calls to the one replica that holds its state.
// qcal-server ignores the header; only routers read it.
//
// Metadata values must be printable ASCII (only keys ending in "-bin" may carry bytes), while a
// model name is UTF-8 of up to 1024 bytes, so the value is the name percent-encoded: bytes 0x21
// to 0x7E other than '%' as they are, every other byte (space, '%', control and non-ASCII bytes)
// as '%' and two uppercase hex digits. The encoding is one-to-one, and a name gives the same
// ASCII string on every client, which is what a hash needs.
//
//   ModelMetadataValue("resnet50")  == "resnet50"
//   ModelMetadataValue("modèle 1") == "mod%C3%A8le%201"
#ifndef QCAL_CLIENT_ROUTING_H_
#define QCAL_CLIENT_ROUTING_H_

#include <string>
#include <string_view>

namespace qcal {

// The metadata key (nginx sees it as $http_qcal_model).
inline constexpr char kModelMetadataKey[] = "qcal-model";

// `model` percent-encoded as above.
std::string ModelMetadataValue(std::string_view model);

}  // namespace qcal

#endif  // QCAL_CLIENT_ROUTING_H_
