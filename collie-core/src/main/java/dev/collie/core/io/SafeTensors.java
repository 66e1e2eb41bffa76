package dev.collie.core.io;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.collie.core.CollieException;
import org.bytedeco.javacpp.BytePointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.longer.MatchCondition;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.conditions.Condition;
import org.nd4j.linalg.indexing.conditions.Conditions;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Reader and writer for the Hugging Face safetensors format: an 8-byte little-endian header length N,
 * N bytes of JSON header, then the tensors' bytes, little-endian and row-major.
 *
 * <p>{@link #open(Path)} reads only the header; each {@link #load} maps just the bytes of the tensor it is
 * asked for (read-only memory map) and converts them into a new 'c'-order {@link INDArray}. A reader may be
 * shared by threads. Loaded arrays are allocated outside any active ND4J workspace. {@link #write} writes a file
 * atomically (temporary file, fsync, atomic rename).
 *
 * <p>Why one class of ~900 lines: it is the whole file format, reader and writer, with the header's validation (every
 * field of a hostile file is checked before use, each failure naming the file and the field) and the typed copies in
 * and out; split, the checks and the layout they guard would live apart.
 */
public final class SafeTensors implements AutoCloseable {

    /** The element types of the safetensors format, with their size and natural ND4J type. */
    public enum DType {
        F64(8, DataType.DOUBLE),
        F32(4, DataType.FLOAT),
        F16(2, DataType.HALF),
        BF16(2, DataType.BFLOAT16),
        I64(8, DataType.LONG),
        I32(4, DataType.INT),
        I16(2, DataType.SHORT),
        I8(1, DataType.BYTE),
        U8(1, DataType.UBYTE),
        U16(2, DataType.UINT16),
        U32(4, DataType.UINT32),
        U64(8, DataType.UINT64),
        BOOL(1, DataType.BOOL),
        /** 8-bit floats: recognised in headers, but ND4J has no type to load them into. */
        F8_E4M3(1, null),
        F8_E5M2(1, null);

        private final int byteSize;
        private final DataType nd4j;

        DType(int byteSize, DataType nd4j) {
            this.byteSize = byteSize;
            this.nd4j = nd4j;
        }

        /** Bytes per element. */
        public int byteSize() {
            return byteSize;
        }

        /** The ND4J type holding the same values bit for bit, or null if there is none (8-bit floats). */
        public DataType nd4jType() {
            return nd4j;
        }

        /** True for the floating-point types. */
        public boolean isFloatingPoint() {
            return this == F64 || this == F32 || this == F16 || this == BF16 || this == F8_E4M3 || this == F8_E5M2;
        }

        /** The safetensors dtype that stores ND4J type {@code t}, or null if safetensors has none. */
        public static DType fromNd4j(DataType t) {
            for (DType d : values()) {
                if (d.nd4j == t) {
                    return d;
                }
            }
            return null;
        }

        static DType parse(String s) {
            for (DType d : values()) {
                if (d.name().equals(s)) {
                    return d;
                }
            }
            return null;
        }
    }

    /** The format's own limit on the header size (the Rust reader refuses larger headers). */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    /** Largest piece converted in one go; keeps every ByteBuffer well under 2 GiB. */
    static final int CHUNK_BYTES = 1 << 26;
    /** Size of one read-only mapping of the file. */
    static final long MAP_WINDOW_BYTES = 1L << 30;

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();
    private static final boolean NATIVE_LE = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final long dataLength;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafeTensors(Path path, FileChannel channel) throws IOException {
        this.path = path;
        this.channel = channel;
        long size = channel.size();
        if (size < 8) {
            throw error("truncated: the file has " + size + " bytes, fewer than the 8-byte header length");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(lenBuf, 0);
        long n = lenBuf.getLong(0);
        if (n < 2 || n > MAX_HEADER_BYTES) {
            throw error("header length " + Long.toUnsignedString(n) + " is not plausible (must be 2.."
                    + MAX_HEADER_BYTES + "): not a safetensors file?");
        }
        if (8 + n > size) {
            throw error("truncated: the header claims " + n + " bytes but only " + (size - 8)
                    + " bytes follow the length field");
        }
        byte[] header = new byte[(int) n];
        readFully(ByteBuffer.wrap(header), 8);
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String where = loc == null ? "" : " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")";
            throw new CollieException(path + ": the header is not valid JSON" + where + ": "
                    + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw error("the header is not a JSON object");
        }
        this.dataStart = 8 + n;
        this.dataLength = size - dataStart;
        Map<String, TensorInfo> ts = new LinkedHashMap<>();
        Map<String, String> meta = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                parseMetadata(e.getValue(), meta);
            } else {
                ts.put(e.getKey(), parseTensor(e.getKey(), e.getValue()));
            }
        }
        this.tensors = Collections.unmodifiableMap(ts);
        this.metadata = Collections.unmodifiableMap(meta);
    }

    /**
     * Opens {@code file} and reads its header; no tensor data is read.
     *
     * @throws CollieException if the file is missing, truncated, or its header is malformed
     */
    public static SafeTensors open(Path file) {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CollieException(file + ": no such file", e);
        } catch (AccessDeniedException e) {
            throw new CollieException(file + ": permission denied", e);
        } catch (IOException e) {
            throw new CollieException(file + ": cannot open: " + e.getMessage(), e);
        }
        try {
            return new SafeTensors(file, ch);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new CollieException(file + ": cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /** The file this reader was opened on. */
    public Path path() {
        return path;
    }

    /** Names of the tensors, in header order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** True if the file holds a tensor named {@code name}. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /**
     * Dtype, shape and location of tensor {@code name}.
     *
     * @throws CollieException if there is no such tensor
     */
    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new CollieException(path + ": no tensor named '" + name + "' (the file holds "
                    + tensors.size() + " tensors" + sample(tensors.keySet()) + ")");
        }
        return t;
    }

    /**
     * Dtype, shape and location of tensor {@code name}, which is to become a weight: refuses, from the header alone,
     * a tensor ND4J cannot load or whose dtype is not floating point (integer weights would load as floats silently).
     *
     * @throws CollieException naming the file, the tensor and its dtype
     */
    public TensorInfo weightInfo(String name) {
        TensorInfo t = info(name);
        if (!t.dtype().isFloatingPoint()) {
            throw error(name, "dtype " + t.dtype() + " is not floating point, but it is loaded as a weight"
                    + " (F32, F16, BF16 or F64): a quantized or non-weight tensor?");
        }
        if (t.dtype().nd4jType() == null) {
            throw error(name, "dtype " + t.dtype() + " cannot be loaded: ND4J has no matching type");
        }
        return t;
    }

    /** Loads weight {@code name} as {@code target}, checked first by {@link #weightInfo}. */
    public INDArray loadWeight(String name, DataType target) {
        weightInfo(name);
        return load(name, target);
    }

    /** The header's {@code __metadata__} (empty if absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Loads tensor {@code name} in its own dtype's ND4J type. */
    public INDArray load(String name) {
        return load(name, null);
    }

    /**
     * Loads tensor {@code name} as a new 'c'-order array of type {@code target} (null: the file's own type),
     * with the shape stored in the file. Floating-point data converts to any floating-point target (BF16 and
     * F16 are widened exactly; narrowing rounds to nearest even); integer and BOOL data convert to integer
     * types (range-checked) and to floating-point types. Floating-point data never converts to integers.
     */
    public INDArray load(String name, DataType target) {
        TensorInfo t = info(name);
        DataType tgt = checkTarget(t, target);
        INDArray out = allocate(tgt, t.shape());
        long n = t.numel();
        if (n > 0) {
            copy(t, out, 1, 0, 0, n);
        }
        return out;
    }

    /**
     * Loads the slice {@code [start, start + length)} of dimension {@code dim} of tensor {@code name} (as
     * {@code tensor.narrow(dim, start, length)} in PyTorch), as a new 'c'-order array of type {@code target}.
     * Only the pages holding the slice are touched. Works for every dimension of every rank.
     *
     * @throws CollieException if the tensor is missing, or dim/start/length are outside its shape
     */
    public INDArray loadSlice(String name, DataType target, int dim, long start, long length) {
        TensorInfo t = info(name);
        long[] shape = t.shape();
        if (dim < 0 || dim >= shape.length) {
            throw error(name, "cannot slice dimension " + dim + " of a tensor of shape " + Arrays.toString(shape));
        }
        if (start < 0 || length < 0 || start + length > shape[dim]) {
            throw error(name, "slice [" + start + ", " + (start + length) + ") of dimension " + dim
                    + " is outside the shape " + Arrays.toString(shape));
        }
        DataType tgt = checkTarget(t, target);
        long[] outShape = shape.clone();
        outShape[dim] = length;
        INDArray out = allocate(tgt, outShape);
        long outer = 1;
        for (int d = 0; d < dim; d++) {
            outer *= shape[d];
        }
        long inner = 1;
        for (int d = dim + 1; d < shape.length; d++) {
            inner *= shape[d];
        }
        long count = length * inner;
        if (outer * count == 0) {
            return out;
        }
        if (outer == 1 || length == shape[dim]) {
            copy(t, out, 1, start * inner, 0, outer * count);
        } else {
            copy(t, out, outer, start * inner, shape[dim] * inner, count);
        }
        return out;
    }

    /** A new 'c'-order array outside any active workspace: loaded weights must outlive a step's workspace. */
    private static INDArray allocate(DataType type, long[] shape) {
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return Nd4j.createUninitialized(type, shape, 'c');
        }
    }

    /** Closes the file. Arrays already loaded stay valid. */
    @Override
    public void close() {
        closed = true;
        closeQuietly(channel);
    }

    @Override
    public String toString() {
        return "SafeTensors[" + path + ", " + tensors.size() + " tensors]";
    }

    // ------------------------------------------------------------------------------------------------ writing

    /**
     * Writes {@code tensors} to {@code file} in the map's iteration order (pass a TreeMap for the sorted order
     * Hugging Face uses), with {@code metadata} (may be null or empty) as {@code __metadata__}. Each array's
     * dtype gives the file dtype (FLOAT→F32, DOUBLE→F64, HALF→F16, BFLOAT16→BF16, LONG→I64, INT→I32, ...).
     * The header is padded with spaces to a multiple of 8 bytes. The write is atomic: a temporary file in the
     * same directory is written, fsynced and renamed over {@code file}.
     *
     * @throws CollieException for a tensor with no safetensors dtype, a reserved name, or an I/O failure
     */
    public static void write(Path file, Map<String, ? extends INDArray> tensors, Map<String, String> metadata) {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        ObjectNode root = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode m = root.putObject("__metadata__");
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new CollieException(file + ": metadata keys and values must not be null");
                }
                m.put(e.getKey(), e.getValue());
            }
        }
        INDArray[] arrays = new INDArray[tensors.size()];
        DType[] dtypes = new DType[tensors.size()];
        long offset = 0;
        int i = 0;
        for (Map.Entry<String, ? extends INDArray> e : tensors.entrySet()) {
            String name = e.getKey();
            INDArray a = e.getValue();
            if (name == null || name.equals("__metadata__")) {
                throw new CollieException(file + ": '" + name + "' cannot be used as a tensor name");
            }
            if (a == null) {
                throw new CollieException(file + ": tensor '" + name + "' is null");
            }
            DType dt = DType.fromNd4j(a.dataType());
            if (dt == null) {
                throw new CollieException(file + ": tensor '" + name + "' has ND4J type " + a.dataType()
                        + ", which safetensors cannot store");
            }
            checkFinite(file, name, a);
            long bytes = Math.multiplyExact(a.length(), (long) dt.byteSize());
            ObjectNode t = root.putObject(name);
            t.put("dtype", dt.name());
            ArrayNode shape = t.putArray("shape");
            for (long s : a.shape()) {
                shape.add(s);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
            arrays[i] = a;
            dtypes[i] = dt;
            i++;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new CollieException(file + ": cannot encode the header: " + e.getOriginalMessage(), e);
        }
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        AtomicFiles.write(file, ch -> {
            writeFully(ch, head);
            for (int k = 0; k < arrays.length; k++) {
                writeData(ch, arrays[k], dtypes[k]);
            }
        });
    }

    /**
     * A non-finite number never reaches a saved file: a floating-point tensor's sum is finite when all its elements
     * are (one pass; a sum beyond the type's range also fails, which no usable weight or state reaches), and only
     * then are the NaN and infinite elements counted for the message.
     */
    private static void checkFinite(Path file, String name, INDArray a) {
        if (!a.dataType().isFPType() || a.length() == 0 || Double.isFinite(a.sumNumber().doubleValue())) {
            return;
        }
        long nan = count(a, Conditions.isNan());
        long inf = count(a, Conditions.isInfinite());
        String what = nan + inf == 0 ? "values whose sum overflows " + a.dataType()
                : nan + " NaN and " + inf + " infinite value" + (inf == 1 ? "" : "s");
        throw new CollieException(file + ": not written: tensor '" + name + "' " + Arrays.toString(a.shape())
                + " has " + what + " (training diverged?); a non-finite number is never saved");
    }

    private static long count(INDArray a, Condition c) {
        return Nd4j.getExecutioner().exec(new MatchCondition(a, c)).getLong(0);
    }

    private static void writeData(FileChannel ch, INDArray a, DType dt) throws IOException {
        long n = a.length();
        if (n == 0) {
            return;
        }
        boolean plain = a.ordering() == 'c' && !a.isView() && a.offset() == 0 && a.data().length() == n;
        INDArray c;
        if (plain) {
            c = a;
        } else {
            try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
                c = a.dup('c');
            }
        }
        try {
            int size = dt.byteSize();
            long total = n * size;
            long chunk = (CHUNK_BYTES / 8) * 8L;
            for (long pos = 0; pos < total; pos += chunk) {
                int len = (int) Math.min(chunk, total - pos);
                ByteBuffer src = nativeBytes(c, pos, len);
                if (NATIVE_LE || size == 1) {
                    writeFully(ch, src);
                } else {
                    ByteBuffer le = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
                    copyRaw(src, le, size);
                    le.rewind();
                    writeFully(ch, le);
                }
            }
        } finally {
            if (c != a) {
                c.close();
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ reading

    private TensorInfo parseTensor(String name, JsonNode v) {
        if (!v.isObject()) {
            throw error(name, "its header entry is not a JSON object");
        }
        JsonNode dt = v.get("dtype");
        if (dt == null || !dt.isTextual()) {
            throw error(name, "missing or non-string \"dtype\"");
        }
        DType dtype = DType.parse(dt.asText());
        if (dtype == null) {
            throw error(name, "unknown dtype \"" + dt.asText() + "\" (known: "
                    + Arrays.stream(DType.values()).map(Enum::name).collect(Collectors.joining(", ")) + ")");
        }
        JsonNode sh = v.get("shape");
        if (sh == null || !sh.isArray()) {
            throw error(name, "missing or non-array \"shape\"");
        }
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw error(name, "\"shape\" " + sh + " must hold non-negative integers");
            }
            shape[i] = d.asLong();
        }
        JsonNode off = v.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2) {
            throw error(name, "missing \"data_offsets\" or not a [begin, end] pair");
        }
        for (JsonNode o : off) {
            if (!o.isIntegralNumber() || !o.canConvertToLong() || o.asLong() < 0) {
                throw error(name, "\"data_offsets\" " + off + " must hold non-negative integers");
            }
        }
        long begin = off.get(0).asLong();
        long end = off.get(1).asLong();
        if (begin > end) {
            throw error(name, "\"data_offsets\" " + off + ": begin is after end");
        }
        long need;
        try {
            long numel = 1;
            for (long s : shape) {
                numel = Math.multiplyExact(numel, s);
            }
            need = Math.multiplyExact(numel, (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            throw error(name, "shape " + Arrays.toString(shape) + " is too large");
        }
        if (end - begin != need) {
            throw error(name, "\"data_offsets\" " + off + " span " + (end - begin) + " bytes but dtype " + dtype
                    + " with shape " + Arrays.toString(shape) + " needs " + need);
        }
        if (end > dataLength) {
            throw error(name, "\"data_offsets\" " + off + " lie outside the file, whose data section has only "
                    + dataLength + " bytes (truncated file?)");
        }
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private void parseMetadata(JsonNode m, Map<String, String> out) {
        if (m == null || m.isNull()) {
            return;
        }
        if (!m.isObject()) {
            throw error("\"__metadata__\" is not a JSON object");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            out.put(e.getKey(), v.isTextual() ? v.asText() : v.toString());
        }
    }

    private DataType checkTarget(TensorInfo t, DataType target) {
        DType src = t.dtype();
        if (src.nd4jType() == null) {
            throw error(t.name(), "dtype " + src + " cannot be loaded: ND4J has no matching type");
        }
        DataType tgt = target == null ? src.nd4jType() : target;
        if (tgt == src.nd4jType()) {
            return tgt;
        }
        boolean ok;
        if (src.isFloatingPoint()) {
            ok = isFloatTarget(tgt);
        } else {
            ok = isFloatTarget(tgt) || isIntTarget(tgt) || (tgt == DataType.BOOL && src == DType.BOOL);
        }
        if (!ok) {
            throw error(t.name(), "cannot load a " + src + " tensor as ND4J " + tgt
                    + (src.isFloatingPoint() && isIntTarget(tgt) ? " (floating point to integer is refused)" : ""));
        }
        return tgt;
    }

    private static boolean isFloatTarget(DataType t) {
        return t == DataType.DOUBLE || t == DataType.FLOAT || t == DataType.HALF || t == DataType.BFLOAT16;
    }

    private static boolean isIntTarget(DataType t) {
        return t == DataType.LONG || t == DataType.INT || t == DataType.SHORT || t == DataType.BYTE
                || t == DataType.UBYTE || t == DataType.UINT16 || t == DataType.UINT32 || t == DataType.UINT64;
    }

    /**
     * Copies {@code outer} runs of {@code count} elements of tensor {@code t}, the first starting at element
     * {@code firstElem} and each next one {@code strideElems} further, into consecutive elements of {@code out}.
     */
    private void copy(TensorInfo t, INDArray out, long outer, long firstElem, long strideElems, long count) {
        if (closed) {
            throw new IllegalStateException(path + ": the reader is closed");
        }
        DType src = t.dtype();
        int ss = src.byteSize();
        int ds = out.data().getElementSize();
        long base = dataStart + t.dataBegin();
        int chunkElems = CHUNK_BYTES / Math.max(ss, ds);
        try (Window w = new Window(dataStart + t.dataEnd())) {
            long dst = 0;
            for (long o = 0; o < outer; o++) {
                long s = firstElem + o * strideElems;
                long left = count;
                while (left > 0) {
                    int n = (int) Math.min(left, chunkElems);
                    ByteBuffer in = w.bytes(base + s * ss, n * ss);
                    ByteBuffer outBuf = nativeBytes(out, dst * ds, n * ds);
                    convert(src, in, out.dataType(), outBuf, n);
                    s += n;
                    dst += n;
                    left -= n;
                }
            }
        } catch (ArithmeticException e) {
            throw error(t.name(), "cannot load as " + out.dataType() + ": " + e.getMessage());
        } catch (IOException e) {
            if (closed) {
                throw new IllegalStateException(path + ": the reader was closed during a load", e);
            }
            throw new CollieException(path + ": tensor '" + t.name() + "': cannot read: " + e, e);
        }
    }

    /** A moving read-only mapping of the file, unmapped as soon as it moves on. */
    private final class Window implements AutoCloseable {
        private final long limit;
        private MappedByteBuffer map;
        private long mapStart;
        private long mapEnd;

        Window(long limit) {
            this.limit = limit;
        }

        ByteBuffer bytes(long abs, int len) throws IOException {
            if (map == null || abs < mapStart || abs + len > mapEnd) {
                release();
                mapStart = abs;
                mapEnd = Math.min(limit, abs + Math.max(len, MAP_WINDOW_BYTES));
                map = channel.map(FileChannel.MapMode.READ_ONLY, mapStart, mapEnd - mapStart);
            }
            return map.slice((int) (abs - mapStart), len).order(ByteOrder.LITTLE_ENDIAN);
        }

        private void release() {
            if (map != null) {
                Unmapper.unmap(map);
                map = null;
            }
        }

        @Override
        public void close() {
            release();
        }
    }

    /** Unmaps a mapping at once instead of at some later GC, so that loading a large checkpoint does not pile up mappings. */
    private static final class Unmapper {
        private static final Object UNSAFE;
        private static final Method INVOKE_CLEANER;

        static {
            Object unsafe = null;
            Method m = null;
            try {
                Class<?> c = Class.forName("sun.misc.Unsafe");
                Field f = c.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                unsafe = f.get(null);
                m = c.getMethod("invokeCleaner", ByteBuffer.class);
            } catch (ReflectiveOperationException | RuntimeException e) {
                unsafe = null;
                m = null;
            }
            UNSAFE = unsafe;
            INVOKE_CLEANER = m;
        }

        static void unmap(MappedByteBuffer b) {
            if (INVOKE_CLEANER != null) {
                try {
                    INVOKE_CLEANER.invoke(UNSAFE, b);
                } catch (ReflectiveOperationException | RuntimeException ignored) {
                    // the GC unmaps it later
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------ conversion

    /** A direct buffer over bytes {@code [byteOffset, byteOffset + len)} of {@code a}'s native data, native order. */
    static ByteBuffer nativeBytes(INDArray a, long byteOffset, int len) {
        BytePointer p = new BytePointer(a.data().pointer()).getPointer(byteOffset);
        p.capacity(len);
        p.limit(len);
        return p.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    /** Converts {@code n} elements from {@code in} (little-endian, type {@code src}) to {@code out} (native order). */
    static void convert(DType src, ByteBuffer in, DataType tgt, ByteBuffer out, int n) {
        if (src.nd4jType() == tgt) {
            copyRaw(in, out, src.byteSize());
        } else if (src == DType.BF16 && tgt == DataType.FLOAT) {
            for (int i = 0; i < n; i++) {
                out.putFloat(4 * i, bf16ToFloat(in.getShort(2 * i)));
            }
        } else if (src == DType.F16 && tgt == DataType.FLOAT) {
            for (int i = 0; i < n; i++) {
                out.putFloat(4 * i, halfToFloat(in.getShort(2 * i)));
            }
        } else if (src.isFloatingPoint()) {
            for (int i = 0; i < n; i++) {
                putFloating(tgt, out, i, getFloating(src, in, i));
            }
        } else if (isFloatTarget(tgt)) {
            for (int i = 0; i < n; i++) {
                putFloating(tgt, out, i, getInteger(src, in, i));
            }
        } else {
            for (int i = 0; i < n; i++) {
                putInteger(tgt, out, i, getInteger(src, in, i));
            }
        }
    }

    private static void copyRaw(ByteBuffer in, ByteBuffer out, int size) {
        ByteBuffer a = in.duplicate().order(in.order());
        ByteBuffer b = out.duplicate().order(out.order());
        if (a.order() == b.order() || size == 1) {
            b.put(a);
        } else if (size == 2) {
            b.asShortBuffer().put(a.asShortBuffer());
        } else if (size == 4) {
            b.asIntBuffer().put(a.asIntBuffer());
        } else {
            b.asLongBuffer().put(a.asLongBuffer());
        }
    }

    private static double getFloating(DType src, ByteBuffer in, int i) {
        switch (src) {
            case F64: return in.getDouble(8 * i);
            case F32: return in.getFloat(4 * i);
            case F16: return halfToFloat(in.getShort(2 * i));
            case BF16: return bf16ToFloat(in.getShort(2 * i));
            default: throw new IllegalStateException(src.name());
        }
    }

    private static long getInteger(DType src, ByteBuffer in, int i) {
        switch (src) {
            case I64: return in.getLong(8 * i);
            case I32: return in.getInt(4 * i);
            case I16: return in.getShort(2 * i);
            case I8: return in.get(i);
            case U8: return in.get(i) & 0xffL;
            case U16: return in.getShort(2 * i) & 0xffffL;
            case U32: return in.getInt(4 * i) & 0xffffffffL;
            case U64: {
                long v = in.getLong(8 * i);
                if (v < 0) {
                    throw new ArithmeticException("U64 value " + Long.toUnsignedString(v) + " at element " + i
                            + " exceeds the signed 64-bit range");
                }
                return v;
            }
            case BOOL: return in.get(i) != 0 ? 1 : 0;
            default: throw new IllegalStateException(src.name());
        }
    }

    private static void putFloating(DataType tgt, ByteBuffer out, int i, double v) {
        switch (tgt) {
            case DOUBLE: out.putDouble(8 * i, v); break;
            case FLOAT: out.putFloat(4 * i, (float) v); break;
            case HALF: out.putShort(2 * i, floatToHalf((float) v)); break;
            case BFLOAT16: out.putShort(2 * i, floatToBf16((float) v)); break;
            default: throw new IllegalStateException(tgt.name());
        }
    }

    private static void putInteger(DataType tgt, ByteBuffer out, int i, long v) {
        switch (tgt) {
            case LONG: case UINT64:
                if (tgt == DataType.UINT64 && v < 0) {
                    throw outOfRange(v, i, tgt);
                }
                out.putLong(8 * i, v);
                break;
            case INT:
                if (v != (int) v) {
                    throw outOfRange(v, i, tgt);
                }
                out.putInt(4 * i, (int) v);
                break;
            case UINT32:
                if (v < 0 || v > 0xffffffffL) {
                    throw outOfRange(v, i, tgt);
                }
                out.putInt(4 * i, (int) v);
                break;
            case SHORT:
                if (v != (short) v) {
                    throw outOfRange(v, i, tgt);
                }
                out.putShort(2 * i, (short) v);
                break;
            case UINT16:
                if (v < 0 || v > 0xffff) {
                    throw outOfRange(v, i, tgt);
                }
                out.putShort(2 * i, (short) v);
                break;
            case BYTE:
                if (v != (byte) v) {
                    throw outOfRange(v, i, tgt);
                }
                out.put(i, (byte) v);
                break;
            case UBYTE:
                if (v < 0 || v > 0xff) {
                    throw outOfRange(v, i, tgt);
                }
                out.put(i, (byte) v);
                break;
            case BOOL:
                out.put(i, (byte) (v != 0 ? 1 : 0));
                break;
            default:
                throw new IllegalStateException(tgt.name());
        }
    }

    private static ArithmeticException outOfRange(long v, int i, DataType t) {
        return new ArithmeticException("value " + v + " (element " + i + " of the chunk) does not fit " + t);
    }

    /** bfloat16 bits to float: exact. */
    static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** float to bfloat16 bits, rounding to nearest even; NaN stays NaN. */
    static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7fffffff) > 0x7f800000) {
            return (short) ((x >>> 16) | 0x40);
        }
        x += 0x7fff + ((x >>> 16) & 1);
        return (short) (x >>> 16);
    }

    /** IEEE binary16 bits to float: exact, including subnormals, infinities and NaN. */
    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1f;
        int mant = bits & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** float to IEEE binary16 bits, rounding to nearest even; overflow gives infinity, NaN stays NaN. */
    static short floatToHalf(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = (x >>> 23) & 0xff;
        int mant = x & 0x7fffff;
        if (exp == 0xff) {
            return (short) (sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >>> 13) : 0));
        }
        int e = exp - 112;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign;
            }
            int m = mant | 0x800000;
            int shift = 14 - e;
            int h = m >>> shift;
            int rem = m & ((1 << shift) - 1);
            int half = 1 << (shift - 1);
            if (rem > half || (rem == half && (h & 1) != 0)) {
                h++;
            }
            return (short) (sign | h);
        }
        int h = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) {
            h++;
        }
        return (short) (sign | h);
    }

    // -------------------------------------------------------------------------------------------- helpers

    private void readFully(ByteBuffer buf, long pos) throws IOException {
        long p = pos;
        while (buf.hasRemaining()) {
            int r = channel.read(buf, p);
            if (r < 0) {
                throw error("truncated: unexpected end of file at byte " + p);
            }
            p += r;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        AtomicFiles.writeFully(ch, buf);
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }

    private CollieException error(String msg) {
        return new CollieException(path + ": " + msg);
    }

    private CollieException error(String tensor, String msg) {
        return new CollieException(path + ": tensor '" + tensor + "': " + msg);
    }

    static String sample(Set<String> names) {
        if (names.isEmpty()) {
            return "";
        }
        String s = names.stream().limit(5).collect(Collectors.joining(", "));
        return ", e.g. " + s + (names.size() > 5 ? ", ..." : "");
    }
}
