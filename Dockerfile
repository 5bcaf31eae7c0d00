# The IOC engine's image (docker-compose.yml runs the worker and the simulator from it).
# An editable install: the engine reads rules/ and config/ next to its code.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ioc ioc
COPY streams streams
COPY sensors_sim sensors_sim
COPY rules rules
COPY config config
RUN pip install --no-cache-dir -e .
ENTRYPOINT ["ioc"]
