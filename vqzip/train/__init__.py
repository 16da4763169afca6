"""Training, as a product feature: `vqzip train tokenizer|prior` on any folder of images."""
