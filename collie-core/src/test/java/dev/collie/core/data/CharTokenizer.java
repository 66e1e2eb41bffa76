package dev.collie.core.data;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * A character-level test tokenizer: pad 0, BOS 1, EOS 2, and character {@code c} as {@code c + 3}
 * (so 'a' is 100). It records the longest text it was asked to encode.
 */
class CharTokenizer implements Tokenizer {
    static final int PAD = 0;
    static final int BOS = 1;
    static final int EOS = 2;
    static final int OFFSET = 3;

    private final boolean bos;
    private final boolean eos;
    final List<Integer> encodedLengths = new ArrayList<>();

    CharTokenizer(boolean bos, boolean eos) {
        this.bos = bos;
        this.eos = eos;
    }

    /** With BOS and EOS. */
    CharTokenizer() {
        this(true, true);
    }

    static int id(char c) {
        return c + OFFSET;
    }

    /** The ids of {@code s} without special tokens. */
    static int[] ids(String s) {
        return s.chars().map(c -> c + OFFSET).toArray();
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        encodedLengths.add(text.length());
        int[] body = ids(text);
        if (!addSpecialTokens || !bos) {
            return body;
        }
        int[] out = new int[body.length + 1];
        out[0] = BOS;
        System.arraycopy(body, 0, out, 1, body.length);
        return out;
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            if (id >= OFFSET) {
                sb.append((char) (id - OFFSET));
            } else if (!skipSpecialTokens) {
                sb.append(id == BOS ? "<s>" : id == EOS ? "</s>" : "<pad>");
            }
        }
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return 256 + OFFSET;
    }

    @Override
    public OptionalInt bosId() {
        return bos ? OptionalInt.of(BOS) : OptionalInt.empty();
    }

    @Override
    public OptionalInt eosId() {
        return eos ? OptionalInt.of(EOS) : OptionalInt.empty();
    }

    @Override
    public int padId() {
        return PAD;
    }
}
