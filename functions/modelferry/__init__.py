"""modelferry: Hugging Face Hub -> Amazon Bedrock Custom Model Import, verified."""
