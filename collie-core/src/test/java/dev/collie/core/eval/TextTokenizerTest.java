package dev.collie.core.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.core.CollieException;
import dev.collie.core.testing.MetricFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TextTokenizerTest {
    /** Every prediction and reference of the fixtures splits as Python's str.split, sacrebleu's 13a, torchmetrics. */
    @ParameterizedTest
    @ValueSource(strings = {"whitespace", "13a", "rouge"})
    void tokensMatchTheReferenceTokenizers(String name) {
        JsonNode tokens = MetricFixtures.text().get("tokens");
        List<String> texts = MetricFixtures.strings(tokens.get("texts"));
        TextTokenizer t = TextTokenizer.named(name);
        for (int i = 0; i < texts.size(); i++) {
            assertEquals(MetricFixtures.strings(tokens.get(name).get(i)), t.tokenize(texts.get(i)),
                    name + " of " + texts.get(i));
        }
    }

    @Test
    void whitespaceIsPythonsIncludingNoBreakSpaces() {
        assertEquals(List.of("a", "b", "c", "d", "e"), TextTokenizer.WHITESPACE.tokenize("a\u00A0b\u2007c\u202Fd\u0085e"));
        assertEquals(List.of("x\u200By"), TextTokenizer.WHITESPACE.tokenize(" x\u200By "), "a zero-width space joins");
        assertEquals(List.of(), TextTokenizer.WHITESPACE.tokenize(" \t\n "));
    }

    @Test
    void thirteenAKeepsNumbersWhole() {
        assertEquals(List.of("pi", "is", "3.14", ",", "not", "3", ",", "and", "1,000", "-", "2", "."),
                TextTokenizer.SACREBLEU_13A.tokenize("pi is 3.14, not 3, and 1,000-2."));
    }

    @Test
    void unknownNamesListTheKnownOnes() {
        assertSame(TextTokenizer.SACREBLEU_13A, TextTokenizer.named("13A"));
        CollieException e = assertThrows(CollieException.class, () -> TextTokenizer.named("spaces"));
        assertEquals("unknown tokenizer 'spaces'; known: 13a, rouge, whitespace", e.getMessage());
    }
}
