package dev.collie.core.io;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The shared Hugging Face config reader and writer that every model family's config goes through. */
class HfConfigTest {
    private static String message(Runnable r) {
        return assertThrows(CollieException.class, r::run).getMessage();
    }

    @Test
    void readsTypedFieldsAndNamesTheFileAndFieldOfBadOnes() {
        HfConfig c = HfConfig.parse("{\"a\": 3.0, \"b\": true, \"ids\": [1, 2], \"none\": -1, \"s\": \"x\"}", "m/config.json");
        assertEquals(3, c.requiredInt("a"));
        assertEquals(7, c.intOr("missing", 7));
        assertArrayEquals(new int[] {1, 2}, c.tokenIds("ids"));
        assertNull(c.optTokenId("none"));
        assertEquals("m/config.json: missing required field z", message(() -> c.requiredInt("z")));
        assertEquals("m/config.json: s must be an integer, got \"x\"", message(() -> c.optInt("s")));
        assertEquals("m/config.json: b must be a number, got true", message(() -> c.dbl("b", 0)));
        assertEquals("m/config.json: model_type is \"x\", but only \"qwen2\" is supported",
                message(() -> HfConfig.parse("{\"model_type\": \"x\"}", "m/config.json").requireModelType("qwen2")));
        String m = message(() -> HfConfig.parse("{\n \"a\": 1,\n \"a\": 2\n}", "dup.json"));
        assertEquals("dup.json: malformed JSON at line 3, column 5: Duplicate field 'a'", m);
    }

    @Test
    void sectionsNameTheirFieldsWithThePath() {
        HfConfig c = HfConfig.parse("{\"rope_parameters\": {\"factor\": \"x\"}, \"n\": 3}", "c.json");
        HfConfig rp = c.section("rope_parameters");
        assertEquals("c.json: rope_parameters.factor must be a number, got \"x\"", message(() -> rp.optDbl("factor")));
        assertEquals("c.json: missing required field rope_parameters.low", message(() -> rp.requiredDbl("low")));
        assertNull(c.section("rope_scaling"));
        assertEquals("c.json: n must be a JSON object or null, got 3", message(() -> c.section("n")));
    }

    @Test
    void writesIdsAsTransformersDoes() {
        ObjectNode o = HfConfig.newObject();
        HfConfig.putId(o, "bos_token_id", OptionalInt.empty());
        HfConfig.putIds(o, "eos_token_id", new int[] {1, 2});
        HfConfig.putIds(o, "pad_token_id", new int[] {7});
        assertEquals("{\n  \"bos_token_id\": null,\n  \"eos_token_id\": [\n    1,\n    2\n  ],\n  \"pad_token_id\": 7\n}\n",
                HfConfig.text(o));
        HfConfig back = HfConfig.parse(HfConfig.text(o), "written");
        assertNull(back.optTokenId("bos_token_id"));
        assertArrayEquals(new int[] {1, 2}, back.tokenIds("eos_token_id"));
    }
}
