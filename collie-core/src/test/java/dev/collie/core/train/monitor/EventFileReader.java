package dev.collie.core.train.monitor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reads a TensorBoard event file record by record for the tests, checking each record's two masked CRC32Cs, and
 * decodes the protobuf fields of {@code tensorflow.Event} that the monitor writes.
 */
final class EventFileReader {
    /** One decoded event; {@code tag}/{@code value} are null for the file_version event. */
    record Event(byte[] bytes, double wallTime, long step, String fileVersion, String writer, String tag, Float value) {
    }

    private EventFileReader() {
    }

    /** The record payloads of {@code file}, each checked against its CRCs; the file must end with a whole record. */
    static List<byte[]> records(Path file) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<byte[]> out = new ArrayList<>();
        while (in.hasRemaining()) {
            int at = in.position();
            assertTrue(in.remaining() >= 12, file + ": a torn record header at " + at);
            long length = in.getLong();
            assertEquals(EventRecords.maskedCrc(in.array(), at, 8), in.getInt(), "length CRC of the record at " + at);
            assertTrue(length >= 0 && length + 4 <= in.remaining(), "record at " + at + " has length " + length);
            byte[] data = new byte[(int) length];
            in.get(data);
            assertEquals(EventRecords.maskedCrc(data, 0, data.length), in.getInt(), "data CRC of the record at " + at);
            out.add(data);
        }
        return out;
    }

    /** Every event of {@code file}, decoded. */
    static List<Event> events(Path file) throws IOException {
        List<Event> out = new ArrayList<>();
        for (byte[] r : records(file)) {
            out.add(decode(r));
        }
        return out;
    }

    static Event decode(byte[] bytes) {
        Map<Integer, Object> e = fields(bytes);
        double wall = e.containsKey(1) ? Double.longBitsToDouble((Long) e.get(1)) : 0;
        long step = e.containsKey(2) ? (Long) e.get(2) : 0;
        String version = e.containsKey(3) ? utf8(e.get(3)) : null;
        String writer = e.containsKey(10) ? utf8(fields((byte[]) e.get(10)).get(1)) : null;
        String tag = null;
        Float value = null;
        if (e.containsKey(5)) {
            Map<Integer, Object> v = fields((byte[]) fields((byte[]) e.get(5)).get(1));
            tag = utf8(v.get(1));
            value = Float.intBitsToFloat((Integer) v.get(2));
        }
        return new Event(bytes, wall, step, version, writer, tag, value);
    }

    private static String utf8(Object b) {
        return new String((byte[]) b, StandardCharsets.UTF_8);
    }

    /**
     * The fields of one message by number (a repeated field keeps its last occurrence): varints as Long, fixed64 as
     * its Long bits, fixed32 as its Integer bits, length-delimited as bytes. Fails on anything else.
     */
    static Map<Integer, Object> fields(byte[] m) {
        Map<Integer, Object> out = new LinkedHashMap<>();
        int[] pos = {0};
        while (pos[0] < m.length) {
            long key = varint(m, pos);
            int field = (int) (key >>> 3);
            switch ((int) (key & 7)) {
                case 0 -> out.put(field, varint(m, pos));
                case 1 -> {
                    out.put(field, ByteBuffer.wrap(m, pos[0], 8).order(ByteOrder.LITTLE_ENDIAN).getLong());
                    pos[0] += 8;
                }
                case 2 -> {
                    int len = (int) varint(m, pos);
                    out.put(field, Arrays.copyOfRange(m, pos[0], pos[0] + len));
                    pos[0] += len;
                }
                case 5 -> {
                    out.put(field, ByteBuffer.wrap(m, pos[0], 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
                    pos[0] += 4;
                }
                default -> throw new AssertionError("wire type " + (key & 7) + " of field " + field);
            }
        }
        return out;
    }

    private static long varint(byte[] m, int[] pos) {
        long v = 0;
        for (int shift = 0; ; shift += 7) {
            byte b = m[pos[0]++];
            v |= (long) (b & 0x7F) << shift;
            if (b >= 0) {
                return v;
            }
        }
    }
}
