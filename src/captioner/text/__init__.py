"""Text: the tokenizer and vocabulary, the caption-ending rule, caption metrics, and building a vocabulary."""
