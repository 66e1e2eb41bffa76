package dev.collie.core.data;

import java.util.Optional;
import java.util.OptionalInt;

/** Text to token ids and back. Implementations: the Hugging Face tokenizer.json loader in collie-models. */
public interface Tokenizer {
    /** Token ids of {@code text}; with {@code addSpecialTokens} the tokenizer's template (e.g. a leading BOS) applies. */
    int[] encode(String text, boolean addSpecialTokens);

    /** Text of {@code ids}; special tokens are dropped when {@code skipSpecialTokens}. */
    String decode(int[] ids, boolean skipSpecialTokens);

    int vocabSize();

    OptionalInt bosId();

    OptionalInt eosId();

    /** The padding id; falls back to EOS, then 0, as most LLaMA tokenizers have no pad token. */
    int padId();

    /** The chat template that renders and tokenizes conversations; empty when the tokenizer has none. */
    default Optional<ChatFormat> chat() {
        return Optional.empty();
    }
}
