# The tempoflow worker and CLI image (used by docker-compose.yml).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Bundle the workflow code once at build time instead of at every worker start.
RUN npm run build
ENTRYPOINT ["node", "bin/tempoflow.js"]
CMD ["worker"]
