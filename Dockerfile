# The forecaster worker: `forecaster run` by default, any `forecaster` command otherwise.
#
# CPU by default: torch comes from PyTorch's CPU wheel index (a plain `pip install torch` pulls a
# CUDA build of several GB). For an NVIDIA GPU build with a CUDA index instead; the CUDA wheels
# carry their own runtime, the host needs only the driver and the NVIDIA Container Toolkit:
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
# and give the worker the GPU (docs/deploy.md, "NVIDIA GPU").
FROM python:3.12-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in layers of their own, so that a code change does not reinstall them.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch>=2.4"
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY core ./core
COPY forecaster ./forecaster
COPY db ./db
COPY jobs ./jobs
COPY daemon ./daemon
COPY cli ./cli
COPY reports ./reports
COPY exchanges ./exchanges
COPY migrations ./migrations
RUN pip install --no-deps . && forecaster --help > /dev/null

# Not root; the working directory is writable for a SQLite file, should one be configured.
RUN useradd --create-home --uid 10001 forecaster && mkdir /data && chown forecaster /data
USER forecaster
WORKDIR /data

EXPOSE 9108
CMD ["forecaster", "run"]
