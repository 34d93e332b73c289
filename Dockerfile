# The tempoflow worker and CLI image (used by docker-compose.yml).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only what the worker and CLI run (with .dockerignore keeping dl.cfg, .env and keys out of any layer): no
# tests, docs or local data in the image.
# The project file registers the DAGs and activities the worker runs.
COPY tsconfig.json tempoflow.config.ts ./
COPY bin bin
COPY activities activities
COPY client client
COPY core core
COPY dags dags
COPY services services
COPY worker worker
COPY workflows workflows
COPY scripts/build.ts scripts/build.ts
# Bundle the workflow code once at build time instead of at every worker start.
RUN npm run build
ENTRYPOINT ["node", "bin/tempoflow.js"]
CMD ["worker"]
