"""The networks: the base tokenizer and its quantizers, the token prior, the refinement layer
and its context model, and the restoration filter. Float models; what must be exact is in
coding/."""
