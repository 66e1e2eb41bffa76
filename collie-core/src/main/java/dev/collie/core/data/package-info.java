/**
 * Training data: JSONL samples in CoLLiE's {@code text}, {@code input}/{@code output}, {@code messages} (chats, through
 * a tokenizer's {@link dev.collie.core.data.ChatFormat}) and {@code tokens} forms
 * ({@link dev.collie.core.data.JsonlDataset}), packed plain text for pre-training
 * ({@link dev.collie.core.data.PackedTextDataset}), padding into ND4J batches
 * ({@link dev.collie.core.data.Collator}) and the seeded, resumable, data-parallel
 * {@link dev.collie.core.data.DataLoader}.
 */
package dev.collie.core.data;
