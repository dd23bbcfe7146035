# kube-sticky image: /usr/local/bin/sticky-proxy and /usr/local/bin/sticky-operator.
#
#   docker build -t kube-sticky:0.2.0 .
#   docker run --rm -p 8080:8080 -v "$PWD/proxy.yaml:/etc/kube-sticky/proxy.yaml:ro" \
#     kube-sticky:0.2.0 --config /etc/kube-sticky/proxy.yaml     # the proxy alone, static config
#
# The Helm chart (charts/kube-sticky) runs both binaries from this one image, in two containers
# of one pod, as user 65532 with a read-only root filesystem.
#
# This file is NOT built on the project's development machines or in CI: they have no Docker
# engine (and reach no container registry). test/docker/dockerfile_test.sh checks it statically
# instead: the paths it copies exist, the CMake targets it builds exist and produce the binaries
# it installs, the Debian packages it installs exist, and the runtime packages provide every
# shared library the built binaries need.

# ---- build: compile the two binaries with the release preset --------------------------------
FROM debian:bookworm AS build

# The build half of scripts/install-deps.sh (no test, benchmark or cluster tools).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libboost-dev libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libssl-dev \
      libfmt-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY lib ./lib
COPY proxy ./proxy
COPY operator ./operator

RUN cmake --preset release -G Ninja -DSTICKY_BUILD_TESTS=OFF \
 && cmake --build build/release --target sticky-proxy sticky-operator -j "$(nproc)" \
 && mkdir -p /out \
 && install -m 0755 -s build/release/proxy/sticky-proxy build/release/operator/sticky-operator /out/

# ---- runtime: the binaries and the shared libraries they link --------------------------------
FROM debian:bookworm-slim

# libcpprest2.10 (operator: Kubernetes API client; pulls libbrotli1, zlib1g), libyaml-cpp0.7
# (both: config and kubeconfig parsing), libfmt9 (both: the log), libssl3 (operator: TLS to the
# API server; proxy: TLS to Redis), ca-certificates (for API servers and Redis services with
# publicly signed certificates).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcpprest2.10 libyaml-cpp0.7 libfmt9 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/sticky-proxy /out/sticky-operator /usr/local/bin/

# A numeric non-root user (no passwd entry needed), the one the chart's securityContext names.
USER 65532:65532

# 8080: client traffic (--listen); 9090: metrics and health (--metrics-listen in the chart);
# 8081: sticky-operator's metrics and probes (its --metrics-listen default).
EXPOSE 8080 8081 9090

ENTRYPOINT ["/usr/local/bin/sticky-proxy"]
