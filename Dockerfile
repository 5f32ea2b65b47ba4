# Signal's image for those who build with a Docker engine. `make image`
# builds the same image without one (tools/image); tools/image/image_test.go
# checks that the final stage below states the same user, entrypoint,
# ports, environment and labels.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t signal .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=none
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/signal-notify/signal/internal/cli.version=${VERSION} -X github.com/signal-notify/signal/internal/cli.commit=${REVISION}" \
      -o /root/usr/local/bin/signalctl ./cmd/signalctl && \
    mkdir -p /root/etc/ssl/certs /root/home/nonroot /root/tmp && \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /root/etc/passwd && \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /root/etc/group && \
    cp /etc/ssl/certs/ca-certificates.crt /root/etc/ssl/certs/ && \
    chown 65532:65532 /root/home/nonroot && chmod 700 /root/home/nonroot && chmod 1777 /root/tmp

FROM scratch
ARG VERSION=dev
ARG REVISION=none
COPY --from=build /root/ /
USER 65532:65532
ENV SIGNAL_HTTP_ADDR=:8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8080/tcp 9090/tcp
LABEL org.opencontainers.image.title=signal \
      org.opencontainers.image.source=https://github.com/signal-notify/signal \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.licenses=Apache-2.0
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/signalctl", "serve"]
