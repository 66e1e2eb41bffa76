package dev.collie.models.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Python's str methods and json.dumps where they differ from Java's; expected values are CPython 3.11's. */
class PythonStringsTest {

    @Test
    void splitKeepsEmptyFieldsWithASeparatorAndDropsThemWithout() {
        assertEquals(List.of("a", "b", "", ""), PythonStrings.split("a,b,,", ",", -1));
        assertEquals(List.of("a", "b  "), PythonStrings.split("  a  b  ", null, 1));
        assertEquals(List.of(), PythonStrings.split("", null, -1));
        assertEquals(List.of(""), PythonStrings.split("", ",", -1));
        assertEquals(List.of("a", "b c"), PythonStrings.split("a b c", " ", 1));
        assertThrows(IllegalArgumentException.class, () -> PythonStrings.split("a", "", -1));
    }

    @Test
    void stripUsesPythonsWhiteSpaceAndCodePoints() {
        assertEquals("x", PythonStrings.strip("\u001c x\u00a0", null));
        assertEquals("\u0001x", PythonStrings.strip("\u0001x", null));
        assertEquals("a\u200b", PythonStrings.strip("\u0085a\u200b", null));
        assertEquals("a", PythonStrings.strip("🙂a🙂", "🙂"));
    }

    @Test
    void startswithTakesTuplesAndSliceBoundsAsCPythonDoes() {
        assertFalse(PythonStrings.affix("abc", "", 5L, null, false));
        assertTrue(PythonStrings.affix("abc", "", 3L, null, false));
        assertTrue(PythonStrings.affix("abc", List.of("x", "b"), 1L, null, false));
        assertTrue(PythonStrings.affix("abc", "b", 0L, -1L, true));
        assertTrue(PythonStrings.affix("abc", "c", -1L, null, false));
        assertFalse(PythonStrings.affix("abc", "", 2L, 1L, false));
    }

    @Test
    void replaceCountsAndInsertsBetweenCharactersForAnEmptyOld() {
        assertEquals("-a-b-c-", PythonStrings.replace("abc", "", "-", -1));
        assertEquals("-a-bc", PythonStrings.replace("abc", "", "-", 2));
        assertEquals("bba", PythonStrings.replace("aaa", "a", "b", 2));
    }

    @Test
    void floatsAreWrittenAsPythonsRepr() {
        assertEquals("1e-05", PythonJson.floatRepr(1e-5));
        assertEquals("1e+16", PythonJson.floatRepr(1e16));
        assertEquals("0.1", PythonJson.floatRepr(0.1));
        assertEquals("100.0", PythonJson.floatRepr(100.0));
        assertEquals("1.2345678901234568e+17", PythonJson.floatRepr(123456789012345678.0));
        assertEquals("0.0001", PythonJson.floatRepr(0.0001));
        assertEquals("-2.5e-07", PythonJson.floatRepr(-2.5e-7));
        assertEquals("1000000000000000.0", PythonJson.floatRepr(1e15));
        assertEquals("NaN", PythonJson.floatRepr(Double.NaN));
    }

    @Test
    void jsonDumpsOptionsAsPythonsJsonModule() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("b", "é🙂\u007f");
        m.put("a", List.of(1, Map.of(), List.of()));
        m.put("c", null);
        m.put("d", true);
        assertEquals("{\"a\": [1, {}, []], \"b\": \"\\u00e9\\ud83d\\ude42\\u007f\", \"c\": null, \"d\": true}",
                PythonJson.dumps(m, true, null, null, true));
        Map<String, Object> n = new LinkedHashMap<>();
        n.put("b", List.of(1, 2));
        n.put("a", Map.of("x", "y"));
        assertEquals("{\n  \"b\" = [\n    1,\n    2\n  ],\n  \"a\" = {\n    \"x\" = \"y\"\n  }\n}",
                PythonJson.dumps(n, false, 2, List.of(",", " = "), false));
        assertEquals("{\"b\":[1,2]}", PythonJson.dumps(Map.of("b", List.of(1, 2)), false, null,
                List.of(",", ":"), false));
        assertEquals("\"tab\\there\\u001f\u2028\"",
                PythonJson.dumps("tab\there\u001f\u2028", false, null, null, false));
        assertThrows(IllegalArgumentException.class, () -> PythonJson.dumps(new Object(), false, null, null, false));
    }
}
