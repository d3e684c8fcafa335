"""The data stage: sources read into our record formats, benchmark mirrors, the tokenizer, mixtures and packed token sequences."""
