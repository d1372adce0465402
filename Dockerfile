# One image for producer, worker and dashboard (the command picks the role); TypeScript runs
# through tsx, a runtime dependency, so there is no build step.
#
# CPU image (default):  docker build -t modelq .
# GPU image:            docker build --build-arg ORT_INSTALL=cuda12 -t modelq-gpu .
#   cuda12 only adds onnxruntime's CUDA provider libraries (downloaded at `npm ci`, so build
#   where the internet is reachable). CUDA 12 and cuDNN 9 must also be loadable at run time;
#   without them the worker says so and falls back to CPU.
FROM node:20-bookworm-slim

# skip: no download at install; cuda12: fetch the CUDA execution provider.
ARG ORT_INSTALL=skip
# Read by onnxruntime-node's install script and wins over .npmrc's onnxruntime-node-install=skip.
# MODELQ_BIND: a container's loopback is its own, so the services listen on every interface of the
# container; which host address reaches them is the published port's business (Compose: the host's
# MODELQ_BIND, default 127.0.0.1; `docker run -p 127.0.0.1:8080:8080`).
ENV ONNXRUNTIME_NODE_INSTALL=${ORT_INSTALL} \
    NODE_ENV=production \
    MODELQ_DATA_DIR=/data \
    MODELQ_BIND=0.0.0.0

WORKDIR /app

COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY core ./core
COPY producer ./producer
COPY workers ./workers
COPY dashboard ./dashboard
COPY cli ./cli

# A fresh named volume takes the ownership of the directory it is mounted over.
RUN mkdir -p /data && chown node:node /data
USER node

EXPOSE 8080 8081 8001
CMD ["node", "--import", "tsx", "producer/main.ts"]
