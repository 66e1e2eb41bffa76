package dev.collie.core.train.monitor;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * TensorBoard's event file, written by hand: each record is TFRecord-framed (length as little-endian uint64, its
 * masked CRC32C, the bytes, their masked CRC32C) around a {@code tensorflow.Event} protobuf message. Only what a
 * scalar log needs: the leading {@code file_version} event and scalar events ({@code wall_time}, {@code step},
 * {@code summary.value[0] = {tag, simple_value}}), encoded field by field as protobuf's Python and C++ serializers
 * do, so a scalar event here is byte-identical to one from PyTorch's or tensorboardX's {@code add_scalar}.
 */
final class EventRecords {
    /** The {@code file_version} TensorBoard expects in the first event of a file. */
    static final String FILE_VERSION = "brain.Event:2";

    // tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary),
    // source_metadata = 10 (SourceMetadata: writer = 1, string); Summary: value = 1 (repeated Value);
    // Summary.Value: tag = 1 (string), simple_value = 2 (float, in a oneof)
    private static final int WALL_TIME = 1 << 3 | 1;
    private static final int STEP = 2 << 3;
    private static final int FILE_VERSION_FIELD = 3 << 3 | 2;
    private static final int SUMMARY = 5 << 3 | 2;
    private static final int SOURCE_METADATA = 10 << 3 | 2;
    private static final int WRITER = 1 << 3 | 2;
    private static final int VALUE = 1 << 3 | 2;
    private static final int TAG = 1 << 3 | 2;
    private static final int SIMPLE_VALUE = 2 << 3 | 5;
    private static final int MASK_DELTA = 0xa282ead8;

    private EventRecords() {
    }

    /**
     * The first event of a file: its wall time, {@link #FILE_VERSION} and the program that wrote it
     * ({@code source_metadata.writer}, as TensorBoard's own writer names itself).
     */
    static byte[] fileVersion(double wallTime, String writer) {
        Proto source = new Proto();
        source.bytes(WRITER, writer.getBytes(StandardCharsets.UTF_8));
        Proto event = new Proto();
        event.wallTime(wallTime);
        event.bytes(FILE_VERSION_FIELD, FILE_VERSION.getBytes(StandardCharsets.UTF_8));
        event.bytes(SOURCE_METADATA, source.toByteArray());
        return event.toByteArray();
    }

    /** One scalar: {@code tag} = {@code value} (as float32, TensorBoard's {@code simple_value}) at {@code step}. */
    static byte[] scalar(double wallTime, long step, String tag, double value) {
        Proto v = new Proto();
        v.bytes(TAG, tag.getBytes(StandardCharsets.UTF_8));
        v.tag(SIMPLE_VALUE);
        v.fixed32(Float.floatToIntBits((float) value));
        Proto summary = new Proto();
        summary.bytes(VALUE, v.toByteArray());
        Proto event = new Proto();
        event.wallTime(wallTime);
        if (step != 0) {                    // proto3 leaves a field at its default out
            event.tag(STEP);
            event.varint(step);
        }
        event.bytes(SUMMARY, summary.toByteArray());
        return event.toByteArray();
    }

    /** {@code data} as one TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data. */
    static ByteBuffer frame(byte[] data) {
        ByteBuffer out = ByteBuffer.allocate(8 + 4 + data.length + 4).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(data.length);
        out.putInt(maskedCrc(out.array(), 0, 8));
        out.put(data);
        out.putInt(maskedCrc(data, 0, data.length));
        return out.flip();
    }

    /** TFRecord's masked CRC32C: the checksum rotated right by 15 bits plus a constant. */
    static int maskedCrc(byte[] b, int off, int len) {
        CRC32C crc = new CRC32C();
        crc.update(b, off, len);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + MASK_DELTA;
    }

    /** A protobuf message being written, field after field. */
    private static final class Proto extends ByteArrayOutputStream {
        void tag(int tag) {
            varint(tag);
        }

        void varint(long v) {
            while ((v & ~0x7FL) != 0) {
                write((int) (v & 0x7F) | 0x80);
                v >>>= 7;
            }
            write((int) v);
        }

        void fixed32(int v) {
            for (int i = 0; i < 4; i++) {
                write(v >>> (8 * i));
            }
        }

        void wallTime(double seconds) {
            if (seconds != 0) {
                tag(WALL_TIME);
                long bits = Double.doubleToRawLongBits(seconds);
                fixed32((int) bits);
                fixed32((int) (bits >>> 32));
            }
        }

        void bytes(int tag, byte[] b) {
            tag(tag);
            varint(b.length);
            writeBytes(b);
        }
    }
}
