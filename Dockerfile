# The Fargate copy task: the same modelferry package the Lambda functions ship, run as
# `python -m modelferry.handlers.copy_file_on_fargate` for files too large for the Lambda time budget (see docs/performance.md).
# Build from the repository root: docker build --platform linux/amd64 -t modelferry-copy-task .
# Pinned by tag only: no digest of python:3.13-slim could be taken from a public source here. Pin it on the machine
# that builds: `docker buildx imagetools inspect python:3.13-slim` prints the digest; use FROM python:3.13-slim@sha256:...
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: their layer is reused while only the code changes.
COPY functions/requirements.txt ./requirements.txt
RUN pip install -r requirements.txt

COPY functions/modelferry ./modelferry
RUN python -m compileall -q modelferry

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin copy
USER 10001

ENTRYPOINT ["python", "-m", "modelferry.handlers.copy_file_on_fargate"]
