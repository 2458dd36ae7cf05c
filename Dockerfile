# kedge in a container. Build the binary first with scripts/build.
#   docker build -t kedge . && docker run --privileged -p 6443:6443 kedge server
FROM debian:bookworm-slim
COPY bin/kedge /bin/kedge
RUN ln -s kedge /bin/kubectl && mkdir -p /var/lib/kedge /etc/kedge
VOLUME /var/lib/kedge
ENTRYPOINT ["/bin/kedge"]
CMD ["server"]
