# kedge in a container, built from source (no pre-built bin/ needed), run the
# way k3d runs k3s: privileged, with its state in volumes.
#   docker build -t kedge .
#   docker run -d --name kedge --privileged --cgroupns=private --tmpfs /run \
#     -p 6443:6443 kedge server
#   docker exec kedge kubectl get nodes
# Untested here (no Docker engine on the development machines); the binary
# it builds is the one scripts/build makes and the tests run.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY scripts/deps scripts/deps
RUN scripts/deps
COPY go.mod go.sum ./
COPY scripts/bundle/go.mod scripts/bundle/go.sum scripts/bundle/
RUN go mod download && cd scripts/bundle && go mod download
COPY . .
ARG KEDGE_VERSION=v0.0.0-container
RUN --mount=type=cache,target=/root/.cache/go-build \
    KEDGE_VERSION=$KEDGE_VERSION scripts/build /out/kedge

# The binary is static, so any base works; kube-proxy and flannel need the
# nft command (and iptables for the portmap CNI plugin and kube-proxy's
# iptables mode).
FROM alpine:3.22
RUN apk add --no-cache nftables iptables ip6tables ca-certificates
COPY --from=build /out/kedge /bin/kedge
COPY scripts/container-entrypoint /bin/container-entrypoint
RUN for n in kubectl crictl ctr; do ln -s kedge /bin/$n; done && mkdir -p /var/lib/kedge /etc/kedge
VOLUME /var/lib/kedge /var/lib/kubelet /var/lib/cni /var/log
ENTRYPOINT ["/bin/container-entrypoint"]
CMD ["server"]
