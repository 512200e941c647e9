# The coordinator image plus Debian's docker-compose (1.29, Python; it talks to the Docker socket itself, no Docker
# CLI needed), for examples/docker-compose.local.yml on machines that reach Debian's packages but no container
# registry. Build the coordinator image first, then this one (the apt-get needs the network: --network host where
# the daemon runs without a bridge):
#   DOCKER_BUILDKIT=1 docker build --network host -f examples/compose/coordinator-debian.Dockerfile \
#     -t shoal-coordinator-compose:local examples/compose
ARG COORDINATOR_IMAGE=shoal-coordinator:dev
FROM ${COORDINATOR_IMAGE}
USER root
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
