# The Fargate copy task: the same modelferry package the Lambda functions ship, run as
# `python -m modelferry.handlers.copy_file_on_fargate` for files too large for the Lambda time budget (see docs/performance.md).
# Build from the repository root: docker build --platform linux/amd64 -t modelferry-copy-task .
# Pinned by digest, so a rebuild gets the same base whatever the tag points at by then: the multi-platform index of
# python:3.13-slim (Python 3.13.14 on Debian trixie, published 5 Aug 2026) as docker-library/repo-info records it
# (repos/python/remote/3.13-slim.md). To move to a newer base: `docker buildx imagetools inspect python:3.13-slim`
# prints the current index digest; replace it here and rebuild (docs/deploy.md).
FROM python:3.13-slim@sha256:9662417aace5ae7b8e2609cce472b72a8958e134ba372808abe9cc1a0c0125e6

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
