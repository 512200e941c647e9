# The coordinator image plus the Docker CLI and its compose plugin, for examples/docker-compose.yml: there the
# coordinator's `command` actuator scales the services with `docker compose up --scale` through the host's Docker
# socket. Build the coordinator image first (from the repository root):
#   docker build -f packages/coordinator/Dockerfile -t shoal-coordinator:dev .
# (compose then builds this file on top of it). The production image (packages/coordinator/Dockerfile) has no
# Docker CLI and needs none: on Kubernetes use the `kubernetes` actuator.
ARG COORDINATOR_IMAGE=shoal-coordinator:dev
ARG DOCKER_CLI_IMAGE=docker:28-cli
FROM ${DOCKER_CLI_IMAGE} AS cli

FROM ${COORDINATOR_IMAGE}
COPY --from=cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=cli /usr/local/libexec/docker/cli-plugins/docker-compose /usr/local/libexec/docker/cli-plugins/docker-compose
