package dev.collie.core.nn;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import dev.collie.core.io.HfConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Both Hugging Face rope layouts in, both out (the frequencies themselves: LlamaConfigTest, against transformers). */
class RopeScalingTest {
    private static RopeScaling read(String json) {
        return RopeScaling.read(HfConfig.parse(json, "c.json"), 4096);
    }

    @Test
    void readsTheTransformers4And5LayoutsAndWritesBoth() {
        assertEquals(RopeScaling.linear(5e5, 2), read("{\"rope_theta\": 5e5, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}"));
        assertEquals(RopeScaling.standard(10000), read("{\"rope_scaling\": null}"));
        RopeScaling llama3 = read("{\"rope_theta\": 1, \"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 5e5,"
                + " \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4}}");
        assertEquals(RopeScaling.llama3(5e5, 8, 1, 4, 4096), llama3);
        ObjectNode o = HfConfig.newObject();
        llama3.write(o);
        assertEquals(llama3, read(HfConfig.text(o)));
        o.remove("rope_parameters");       // what transformers 4.x reads
        assertEquals(llama3, read(HfConfig.text(o)));
    }

    @Test
    void badValuesNameTheFileAndTheField() {
        String m = assertThrows(CollieException.class,
                () -> read("{\"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": -1}}")).getMessage();
        assertEquals("c.json: rope_parameters.factor (-1.0) must be positive for rope_type \"dynamic\"", m);
        m = assertThrows(CollieException.class, () -> read("{\"rope_scaling\": {\"rope_type\": \"yarn\"}}")).getMessage();
        assertEquals("c.json: rope_scaling.rope_type \"yarn\" is not supported (supported: default, dynamic, linear,"
                + " llama3)", m);
        m = assertThrows(CollieException.class, () -> read("{\"rope_scaling\": {\"type\": \"linear\"}}")).getMessage();
        assertEquals("c.json: missing required field rope_scaling.factor", m);
    }
}
