/**
 * Text generation: {@link dev.collie.models.generation.Generator} decodes greedily or samples (temperature,
 * top-p) from any {@link dev.collie.core.train.LanguageModel}, feeding one token per step through a KV cache.
 */
package dev.collie.models.generation;
