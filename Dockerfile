# The curation pipeline with the demo data, tokenizer and language-ID model shipped in the repo.
# Installs exactly what pyproject.toml declares; the default command runs the demo mix end to end.
FROM python:3.11-slim

WORKDIR /opt/curation
COPY pyproject.toml README.md NOTICE ./
COPY curation ./curation
COPY filters ./filters
COPY mixes ./mixes
COPY manifests ./manifests
COPY data ./data
COPY models ./models
COPY tokenizers ./tokenizers
RUN pip install --no-cache-dir .

CMD ["curation", "run", "manifests/demo/demo.yaml"]
