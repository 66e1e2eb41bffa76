package dev.collie.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {

    @TempDir
    Path tmp;

    private static Path resource(String name) {
        try {
            return Paths.get(SafeTensorsTest.class.getResource("/io/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static INDArray seq(DataType t, long... shape) {
        long n = 1;
        for (long s : shape) {
            n *= s;
        }
        double[] v = new double[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = i + 1;
        }
        return Nd4j.create(v, shape, 'c').castTo(t);
    }

    @Test
    void roundTripsEveryDtype() {
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("double", Nd4j.create(new double[] {1e-300, -2.5, Math.PI, 1e300}, new long[] {2, 2}));
        in.put("float", Nd4j.create(new float[] {1.5f, -0.1f, 3e38f, Float.MIN_VALUE, 0f, -0f}, new long[] {3, 2}));
        in.put("half", Nd4j.create(new float[] {1f, -2.5f, 65504f, 0.333251953125f}).castTo(DataType.HALF));
        in.put("bf16", Nd4j.create(new float[] {1f, -3.140625f, 0.333984375f}).castTo(DataType.BFLOAT16));
        in.put("long", Nd4j.create(new long[] {Long.MIN_VALUE, -1, 0, Long.MAX_VALUE}, new long[] {4}, DataType.LONG));
        in.put("int", Nd4j.create(new int[] {Integer.MIN_VALUE, 7, Integer.MAX_VALUE}, new long[] {1, 3}, DataType.INT));
        in.put("short", seq(DataType.SHORT, 2, 3));
        in.put("byte", Nd4j.create(new double[] {-128, 0, 127}).castTo(DataType.BYTE));
        in.put("ubyte", Nd4j.create(new double[] {0, 128, 255}).castTo(DataType.UBYTE));
        in.put("bool", Nd4j.create(new boolean[] {true, false, true}, new long[] {3}, DataType.BOOL));
        in.put("scalar", Nd4j.scalar(42.0f));
        in.put("empty", Nd4j.create(DataType.FLOAT, 0, 4));
        in.put("three_d", seq(DataType.FLOAT, 2, 3, 4));
        Path f = tmp.resolve("all.safetensors");
        SafeTensors.write(f, in, Map.of("format", "pt", "note", "round trip"));

        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(List.copyOf(in.keySet()), List.copyOf(st.names()), "header keeps the map's order");
            assertEquals(Map.of("format", "pt", "note", "round trip"), st.metadata());
            assertEquals(SafeTensors.DType.F64, st.info("double").dtype());
            assertEquals(SafeTensors.DType.F32, st.info("float").dtype());
            assertEquals(SafeTensors.DType.F16, st.info("half").dtype());
            assertEquals(SafeTensors.DType.BF16, st.info("bf16").dtype());
            assertEquals(SafeTensors.DType.I64, st.info("long").dtype());
            assertEquals(SafeTensors.DType.I32, st.info("int").dtype());
            assertEquals(SafeTensors.DType.I16, st.info("short").dtype());
            assertEquals(SafeTensors.DType.I8, st.info("byte").dtype());
            assertEquals(SafeTensors.DType.U8, st.info("ubyte").dtype());
            assertEquals(SafeTensors.DType.BOOL, st.info("bool").dtype());
            assertArrayEquals(new long[0], st.info("scalar").shape());
            assertArrayEquals(new long[] {0, 4}, st.info("empty").shape());
            for (Map.Entry<String, INDArray> e : in.entrySet()) {
                INDArray back = st.load(e.getKey());
                INDArray orig = e.getValue();
                assertEquals(orig.dataType(), back.dataType(), e.getKey());
                assertArrayEquals(orig.shape(), back.shape(), e.getKey());
                assertEquals('c', back.ordering());
                for (long i = 0; i < orig.length(); i++) {
                    if (orig.dataType() == DataType.LONG) {
                        assertEquals(orig.getLong(i), back.getLong(i), e.getKey() + "[" + i + "]");
                    } else {
                        assertEquals(orig.getDouble(i), back.getDouble(i), 0.0, e.getKey() + "[" + i + "]");
                    }
                }
            }
        }
    }

    @Test
    void writesPaddedHeaderAndContiguousOffsets() throws IOException {
        Map<String, INDArray> in = new TreeMap<>();
        in.put("b", seq(DataType.FLOAT, 3));
        in.put("a", seq(DataType.DOUBLE, 2, 2));
        in.put("c", seq(DataType.BFLOAT16, 5));
        Path f = tmp.resolve("layout.safetensors");
        SafeTensors.write(f, in, Map.of("format", "pt"));
        byte[] all = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8, "header length is a multiple of 8");
        String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F64\",\"shape\":[2,2],"
                + "\"data_offsets\":[0,32]}"), header);
        String json = header.stripTrailing();
        assertTrue(json.endsWith("}") && header.length() - json.length() < 8, "padding: '" + header + "'");
        assertTrue(header.substring(json.length()).chars().allMatch(ch -> ch == ' '), "padded with spaces");
        JsonNode h = new ObjectMapper().readTree(header);
        assertEquals("[32,44]", h.get("b").get("data_offsets").toString());
        assertEquals("[44,54]", h.get("c").get("data_offsets").toString());
        assertEquals(8 + n + 54, all.length);
    }

    @Test
    void writeIsAtomicAndReplaces() throws IOException {
        Path f = tmp.resolve("w.safetensors");
        SafeTensors.write(f, Map.of("x", seq(DataType.FLOAT, 4)), null);
        SafeTensors.write(f, Map.of("y", seq(DataType.FLOAT, 2)), null);
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(List.of("y"), List.copyOf(st.names()));
            assertTrue(st.metadata().isEmpty());
        }
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(f), files.toList(), "no temporary file is left behind");
        }
        // a failed write leaves the old file and no temporary file
        Map<String, INDArray> bad = new LinkedHashMap<>();
        bad.put("ok", seq(DataType.FLOAT, 2));
        bad.put("__metadata__", seq(DataType.FLOAT, 2));
        assertThrows(CollieException.class, () -> SafeTensors.write(f, bad, null));
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(List.of("y"), List.copyOf(st.names()));
        }
        try (var files = Files.list(tmp)) {
            assertEquals(1, files.count());
        }
    }

    @Test
    void writesViewsAndFortranOrderArraysAsRowMajor() {
        INDArray base = seq(DataType.FLOAT, 4, 5);
        INDArray view = base.get(NDArrayIndex.interval(1, 3), NDArrayIndex.interval(1, 4));
        INDArray fOrder = base.dup('f');
        INDArray transposed = base.transpose();
        Path f = tmp.resolve("views.safetensors");
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("view", view);
        in.put("f", fOrder);
        in.put("t", transposed);
        SafeTensors.write(f, in, null);
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(view, st.load("view"));
            assertEquals(base, st.load("f"));
            assertEquals(transposed, st.load("t"));
        }
    }

    @Test
    void readsFileWrittenByPythonSafetensors() {
        try (SafeTensors st = SafeTensors.open(resource("python.safetensors"))) {
            assertEquals("pt", st.metadata().get("format"));
            assertEquals(11, st.names().size());
            assertArrayEquals(new float[] {-1f, -0.5f, 0f, 0.5f, 1f, 1.5f},
                    st.load("f32", DataType.FLOAT).data().asFloat());
            assertArrayEquals(new long[] {2, 3}, st.load("f32").shape());
            assertArrayEquals(new double[] {1e-300, 2.5, -3.25}, st.load("f64").data().asDouble());
            assertArrayEquals(new float[] {1f, -2.5f, 65504f, 0x1p-14f, 0x1p-24f, 0.333251953125f},
                    st.load("f16", DataType.FLOAT).data().asFloat());
            assertArrayEquals(new long[] {-(1L << 40), 7}, st.load("i64").data().asLong());
            assertArrayEquals(new int[] {-5, Integer.MAX_VALUE}, st.load("i32").data().asInt());
            assertArrayEquals(new double[] {-128, 127}, st.load("i8").castTo(DataType.DOUBLE).data().asDouble());
            assertArrayEquals(new double[] {0, 255}, st.load("u8").castTo(DataType.DOUBLE).data().asDouble());
            INDArray b = st.load("bool");
            assertEquals(DataType.BOOL, b.dataType());
            assertTrue(b.getDouble(0) != 0 && b.getDouble(1) == 0 && b.getDouble(2) != 0);
            INDArray s = st.load("scalar");
            assertEquals(0, s.rank());
            assertEquals(3.0, s.getDouble(0), 0.0);
            INDArray empty = st.load("empty");
            assertTrue(empty.isEmpty());
            assertArrayEquals(new long[] {0, 4}, empty.shape());
            // ints widen / narrow on request
            assertArrayEquals(new long[] {-5, Integer.MAX_VALUE}, st.load("i32", DataType.LONG).data().asLong());
            assertArrayEquals(new int[] {0, 255}, st.load("u8", DataType.INT).data().asInt());
            assertArrayEquals(new float[] {-(float) (1L << 40), 7f}, st.load("i64", DataType.FLOAT).data().asFloat());
        }
    }

    @Test
    void convertsBf16Exactly() {
        try (SafeTensors st = SafeTensors.open(resource("python.safetensors"))) {
            TensorInfo info = st.info("bf16");
            assertEquals(SafeTensors.DType.BF16, info.dtype());
            assertEquals(8, info.byteSize());
            // the values PyTorch stored: 1/3 and 3e38 rounded to bfloat16
            float[] want = {1f, -3.140625f, 0.333984375f, (float) 3.00405527047391e38};
            INDArray f = st.load("bf16", DataType.FLOAT);
            assertEquals(DataType.FLOAT, f.dataType());
            assertArrayEquals(new long[] {2, 2}, f.shape());
            assertArrayEquals(want, f.data().asFloat());
            INDArray d = st.load("bf16", DataType.DOUBLE);
            for (int i = 0; i < 4; i++) {
                assertEquals(want[i], d.getDouble(i), 0.0);
            }
            INDArray raw = st.load("bf16");
            assertEquals(DataType.BFLOAT16, raw.dataType());
            assertArrayEquals(want, raw.castTo(DataType.FLOAT).data().asFloat());
        }
    }

    @Test
    void halfAndBfloatBitConversions() {
        // every finite half survives half -> float -> half, and half -> float agrees with ND4J's own cast
        short[] all = new short[65536];
        for (int i = 0; i < all.length; i++) {
            all[i] = (short) i;
        }
        INDArray halves = Nd4j.createUninitialized(DataType.HALF, new long[] {all.length}, 'c');
        halves.data().asNio().order(ByteOrder.nativeOrder()).asShortBuffer().put(all);
        float[] nd4j = halves.castTo(DataType.FLOAT).data().asFloat();
        for (int i = 0; i < all.length; i++) {
            float f = SafeTensors.halfToFloat(all[i]);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(SafeTensors.halfToFloat(SafeTensors.floatToHalf(f))));
                continue;
            }
            assertEquals(all[i], SafeTensors.floatToHalf(f), "half bits " + Integer.toHexString(i));
            assertEquals(nd4j[i], f, 0.0, "half bits " + Integer.toHexString(i));
        }
        // rounding to nearest even, overflow and underflow
        assertEquals(SafeTensors.floatToHalf(1f), SafeTensors.floatToHalf(1f + 0x1p-11f), "tie to even (down)");
        assertEquals((short) 0x3c02, SafeTensors.floatToHalf(1f + 3 * 0x1p-11f), "tie to even (up)");
        assertEquals((short) 0x7c00, SafeTensors.floatToHalf(65520f), "rounds to +inf");
        assertEquals((short) 0x7bff, SafeTensors.floatToHalf(65519f));
        assertEquals((short) 0x0001, SafeTensors.floatToHalf(0x1.8p-25f), "rounds up to the smallest subnormal");
        assertEquals((short) 0x0000, SafeTensors.floatToHalf(0x1p-25f), "tie to even: zero");
        assertEquals((short) 0x8000, SafeTensors.floatToHalf(-1e-30f));
        // bfloat16
        Random r = new Random(1);
        for (int i = 0; i < 10000; i++) {
            float f = Float.intBitsToFloat(r.nextInt());
            if (Float.isNaN(f)) {
                continue;
            }
            float back = SafeTensors.bf16ToFloat(SafeTensors.floatToBf16(f));
            if (Float.isInfinite(back)) {
                assertTrue(Math.abs(f) >= 0x1.fefp127f, Float.toString(f));
                continue;
            }
            assertTrue(Math.abs(back - f) <= Math.ulp(back) * 0x1p16f / 2, f + " -> " + back);
        }
        assertEquals((short) 0x3f80, SafeTensors.floatToBf16(1f + 0x1p-8f), "tie to even (down)");
        assertEquals((short) 0x3f82, SafeTensors.floatToBf16(1f + 3 * 0x1p-8f), "tie to even (up)");
        assertTrue(Float.isNaN(SafeTensors.bf16ToFloat(SafeTensors.floatToBf16(Float.NaN))));
    }

    @Test
    void narrowsFloatsOnRequest() {
        Path f = tmp.resolve("narrow.safetensors");
        INDArray x = Nd4j.create(new double[] {1.0 / 3, -2.75, 1e5, 70000});
        SafeTensors.write(f, Map.of("x", x), null);
        try (SafeTensors st = SafeTensors.open(f)) {
            assertArrayEquals(new float[] {1f / 3, -2.75f, 1e5f, 70000f}, st.load("x", DataType.FLOAT).data().asFloat());
            INDArray h = st.load("x", DataType.HALF);
            assertEquals(DataType.HALF, h.dataType());
            assertArrayEquals(new float[] {0.333251953125f, -2.75f, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY},
                    h.castTo(DataType.FLOAT).data().asFloat());
            INDArray b = st.load("x", DataType.BFLOAT16);
            assertArrayEquals(new float[] {0.333984375f, -2.75f, 99840f, 70144f}, b.castTo(DataType.FLOAT).data().asFloat());
        }
    }

    @Test
    void refusesLossyOrImpossibleConversions() {
        Path f = tmp.resolve("conv.safetensors");
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("f", seq(DataType.FLOAT, 3));
        in.put("big", Nd4j.create(new long[] {1, 1L << 40}, new long[] {2}, DataType.LONG));
        SafeTensors.write(f, in, null);
        try (SafeTensors st = SafeTensors.open(f)) {
            CollieException e = assertThrows(CollieException.class, () -> st.load("f", DataType.INT));
            assertTrue(e.getMessage().contains("'f'") && e.getMessage().contains(f.toString()), e.getMessage());
            e = assertThrows(CollieException.class, () -> st.load("big", DataType.INT));
            assertTrue(e.getMessage().contains("'big'") && e.getMessage().contains("1099511627776"), e.getMessage());
            assertArrayEquals(new long[] {1, 1L << 40}, st.load("big", DataType.LONG).data().asLong());
        }
    }

    @Test
    void slicesAlongAnyDimension() {
        INDArray m = seq(DataType.FLOAT, 5, 7);
        INDArray c = seq(DataType.DOUBLE, 3, 4, 5);
        Path f = tmp.resolve("slices.safetensors");
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("m", m);
        in.put("c", c);
        in.put("mb", m.castTo(DataType.BFLOAT16));
        SafeTensors.write(f, in, null);
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(m.get(NDArrayIndex.interval(1, 4), NDArrayIndex.all()), st.loadSlice("m", DataType.FLOAT, 0, 1, 3));
            assertEquals(m.get(NDArrayIndex.all(), NDArrayIndex.interval(2, 6)), st.loadSlice("m", DataType.FLOAT, 1, 2, 4));
            assertEquals(m.get(NDArrayIndex.all(), NDArrayIndex.interval(6, 7)), st.loadSlice("m", DataType.FLOAT, 1, 6, 1));
            assertEquals(m, st.loadSlice("m", DataType.FLOAT, 1, 0, 7));
            assertEquals(m.get(NDArrayIndex.all(), NDArrayIndex.interval(3, 5)).castTo(DataType.DOUBLE),
                    st.loadSlice("m", DataType.DOUBLE, 1, 3, 2));
            // tensor-parallel shards of a BF16 weight, converted to FLOAT
            INDArray r0 = st.loadSlice("mb", DataType.FLOAT, 1, 0, 4);
            INDArray r1 = st.loadSlice("mb", DataType.FLOAT, 1, 4, 3);
            assertEquals(m, Nd4j.concat(1, r0, r1));
            assertEquals(c.get(NDArrayIndex.all(), NDArrayIndex.interval(1, 3), NDArrayIndex.all()),
                    st.loadSlice("c", DataType.DOUBLE, 1, 1, 2));
            assertEquals(c.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(2, 5)),
                    st.loadSlice("c", DataType.DOUBLE, 2, 2, 3));
            assertEquals(c.get(NDArrayIndex.interval(2, 3), NDArrayIndex.all(), NDArrayIndex.all()),
                    st.loadSlice("c", DataType.DOUBLE, 0, 2, 1));
            assertArrayEquals(new long[] {5, 0}, st.loadSlice("m", DataType.FLOAT, 1, 3, 0).shape());

            CollieException e = assertThrows(CollieException.class, () -> st.loadSlice("m", DataType.FLOAT, 1, 5, 3));
            assertTrue(e.getMessage().contains("'m'") && e.getMessage().contains("[5, 8)"), e.getMessage());
            assertThrows(CollieException.class, () -> st.loadSlice("m", DataType.FLOAT, 2, 0, 1));
            assertThrows(CollieException.class, () -> st.loadSlice("m", DataType.FLOAT, 0, -1, 1));
        }
    }

    /**
     * A sparse file whose first tensor is 5 GB: opening it and loading the small tensor after it reads only the
     * header and 16 bytes, and offsets beyond 2 GiB work for load and loadSlice.
     */
    @Test
    void loadsLazilyAndBeyondTwoGigabytes() throws IOException {
        long big = 5_000_000_000L;
        String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + big + "],\"data_offsets\":[0," + big + "]},"
                + "\"small\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[" + big + "," + (big + 16) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path f = tmp.resolve("sparse.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length);
            raf.write(len.array());
            raf.write(h);
            raf.seek(8 + h.length + big);
            ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            data.putFloat(1f).putFloat(2f).putFloat(3f).putFloat(4f);
            raf.write(data.array());
        }
        try (SafeTensors st = SafeTensors.open(f)) {
            assertEquals(big, st.info("big").byteSize());
            assertArrayEquals(new float[] {1, 2, 3, 4}, st.load("small").data().asFloat());
            assertArrayEquals(new float[] {3, 4}, st.loadSlice("small", DataType.FLOAT, 0, 1, 1).data().asFloat());
            INDArray tail = st.loadSlice("big", DataType.UBYTE, 0, big - 10, 10);
            assertEquals(10, tail.length());
            assertEquals(0.0, tail.sumNumber().doubleValue(), 0.0);
        }
    }

    // ------------------------------------------------------------------------------------------- errors

    private Path rawFile(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = tmp.resolve(name);
        Files.write(f, b.array());
        return f;
    }

    private static void assertMessage(Executable call, String... parts) {
        CollieException e = assertThrows(CollieException.class, call::execute);
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "'" + p + "' not in: " + e.getMessage());
        }
    }

    @FunctionalInterface
    private interface Executable {
        void execute() throws Throwable;
    }

    @Test
    void truncatedFileNamesFileAndTensor() throws IOException {
        Path good = tmp.resolve("good.safetensors");
        Map<String, INDArray> in = new LinkedHashMap<>();
        in.put("first", seq(DataType.FLOAT, 4));
        in.put("second", seq(DataType.FLOAT, 4));
        SafeTensors.write(good, in, null);
        byte[] all = Files.readAllBytes(good);
        Path cut = tmp.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(all, all.length - 3));
        assertMessage(() -> SafeTensors.open(cut), cut.toString(), "'second'", "truncated");
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertMessage(() -> SafeTensors.open(tiny), tiny.toString(), "truncated");
        Path headerCut = tmp.resolve("headercut.safetensors");
        Files.write(headerCut, Arrays.copyOf(all, 20));
        assertMessage(() -> SafeTensors.open(headerCut), headerCut.toString(), "truncated");
    }

    @Test
    void headerThatIsNotJson() throws IOException {
        Path f = rawFile("notjson.safetensors", "{\"a\": {\"dtype\": \"F32\",, }", 0);
        assertMessage(() -> SafeTensors.open(f), f.toString(), "not valid JSON", "line 1");
        Path arr = rawFile("array.safetensors", "[1, 2, 3]", 0);
        assertMessage(() -> SafeTensors.open(arr), arr.toString(), "not a JSON object");
        Path huge = tmp.resolve("huge.safetensors");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertMessage(() -> SafeTensors.open(huge), huge.toString(), "not plausible");
    }

    @Test
    void offsetsOutsideTheFile() throws IOException {
        Path f = rawFile("outside.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertMessage(() -> SafeTensors.open(f), f.toString(), "'w'", "outside the file");
        Path g = rawFile("mismatch.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16);
        assertMessage(() -> SafeTensors.open(g), g.toString(), "'w'", "needs 16");
        Path h = rawFile("reversed.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 16);
        assertMessage(() -> SafeTensors.open(h), h.toString(), "'w'", "begin is after end");
    }

    @Test
    void unknownDtype() throws IOException {
        Path f = rawFile("dtype.safetensors",
                "{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16);
        assertMessage(() -> SafeTensors.open(f), f.toString(), "'w'", "unknown dtype \"F128\"");
        Path g = rawFile("f8.safetensors",
                "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
        try (SafeTensors st = SafeTensors.open(g)) {
            assertEquals(SafeTensors.DType.F8_E4M3, st.info("w").dtype());
            assertMessage(() -> st.load("w"), g.toString(), "'w'", "F8_E4M3");
        }
    }

    @Test
    void missingTensorAndMissingFile() {
        Path f = tmp.resolve("one.safetensors");
        SafeTensors.write(f, Map.of("present", seq(DataType.FLOAT, 2)), null);
        try (SafeTensors st = SafeTensors.open(f)) {
            assertFalse(st.contains("absent"));
            assertMessage(() -> st.load("absent", DataType.FLOAT), f.toString(), "'absent'", "present");
            assertMessage(() -> st.info("absent"), f.toString(), "'absent'");
        }
        Path none = tmp.resolve("none.safetensors");
        assertMessage(() -> SafeTensors.open(none), none.toString(), "no such file");
    }

    @Test
    void refusesArraysSafetensorsCannotStore() {
        Path f = tmp.resolve("utf8.safetensors");
        INDArray s = Nd4j.create("a", "b");
        assertMessage(() -> SafeTensors.write(f, Map.of("s", s), null), f.toString(), "'s'", "UTF8");
        assertFalse(Files.exists(f));
    }

    @Test
    void loadedArraysOutliveAnActiveWorkspace() {
        Path f = tmp.resolve("ws.safetensors");
        SafeTensors.write(f, Map.of("x", seq(DataType.FLOAT, 3, 4)), null);
        WorkspaceConfiguration cfg = WorkspaceConfiguration.builder().initialSize(1 << 20)
                .policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.NONE).build();
        INDArray x;
        INDArray s;
        try (SafeTensors st = SafeTensors.open(f);
             MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(cfg, "SafeTensorsTest")) {
            x = st.load("x", DataType.FLOAT);
            s = st.loadSlice("x", DataType.FLOAT, 1, 1, 2);
            assertFalse(x.isAttached());
            assertFalse(s.isAttached());
            // writing a view from inside the workspace works too
            SafeTensors.write(tmp.resolve("ws2.safetensors"), Map.of("v", x.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 2))), null);
        } finally {
            Nd4j.getWorkspaceManager().destroyAllWorkspacesForCurrentThread();
        }
        assertEquals(seq(DataType.FLOAT, 3, 4), x);
        assertEquals(2.0, s.getDouble(0, 0), 0.0);
        try (SafeTensors st = SafeTensors.open(tmp.resolve("ws2.safetensors"))) {
            assertEquals(x.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 2)), st.load("v"));
        }
    }

    @Test
    void closedReaderRefusesLoads() {
        Path f = tmp.resolve("closed.safetensors");
        SafeTensors.write(f, Map.of("x", seq(DataType.FLOAT, 2)), null);
        SafeTensors st = SafeTensors.open(f);
        INDArray x = st.load("x");
        st.close();
        assertThrows(IllegalStateException.class, () -> st.load("x"));
        assertEquals(2, x.length());
        assertEquals(2.0, x.getDouble(1), 0.0);
    }

    @Test
    void aNonFiniteTensorIsNeverWrittenAndTheOldFileStays() throws IOException {
        Path file = tmp.resolve("model.safetensors");
        SafeTensors.write(file, Map.of("w", Nd4j.createFromArray(1f, 2f)), null);
        byte[] good = Files.readAllBytes(file);
        for (INDArray bad : List.of(Nd4j.createFromArray(1f, Float.NaN, Float.NaN),
                Nd4j.createFromArray(Double.NEGATIVE_INFINITY, 0.0),
                Nd4j.createFromArray(1f, 2f).castTo(DataType.BFLOAT16).putScalar(1, Float.POSITIVE_INFINITY))) {
            Map<String, INDArray> tensors = new LinkedHashMap<>();
            tensors.put("ok", Nd4j.createFromArray(3f));
            tensors.put("layer.w", bad);
            CollieException e = assertThrows(CollieException.class, () -> SafeTensors.write(file, tensors, null));
            assertTrue(e.getMessage().contains("'layer.w'") && e.getMessage().contains("not written"), e.getMessage());
            assertArrayEquals(good, Files.readAllBytes(file), "the file written before is untouched");
        }
        CollieException e = assertThrows(CollieException.class, () -> SafeTensors.write(file,
                Map.of("w", Nd4j.createFromArray(1f, Float.NaN, Float.NaN, Float.POSITIVE_INFINITY)), null));
        assertTrue(e.getMessage().contains("2 NaN and 1 infinite value"), e.getMessage());
        // integer tensors have no non-finite values to look for
        SafeTensors.write(file, Map.of("ids", Nd4j.createFromArray(1, 2, 3)), null);
    }
}
