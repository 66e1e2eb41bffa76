package dev.collie.parallel.comm;

import dev.collie.core.CollieException;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The mutual challenge–response that opens every tcp connection of a job, both the registration with rank 0
 * and the mesh between ranks. Each side proves it knows the {@link JobSecret} by an HMAC-SHA256 over a fresh
 * nonce of the other side; the secret itself never crosses the wire.
 * <pre>
 *   connector → acceptor: MAGIC, VERSION, nonceC (32 bytes)
 *   acceptor → connector: MAGIC, VERSION, nonceS (32 bytes), HMAC(secret, "collie acceptor" | nonceC | nonceS)
 *   connector → acceptor: HMAC(secret, "collie connector" | nonceS | nonceC)
 * </pre>
 * The labels keep one side's proof from being replayed as the other's. What follows on the connection is
 * not encrypted. Reads are unbuffered, so no byte of what follows is consumed here.
 */
final class Handshake {
    /** How long a connection may take to complete the handshake (and say which rank it is) before it is dropped. */
    static final Duration TIMEOUT = Duration.ofSeconds(5);

    private static final int MAGIC = 0x436f4c4c; // "CoLL"
    /** 2: authenticated; version 1 (no number on the wire) sent the registration at once. */
    private static final int VERSION = 2;
    private static final int NONCE_BYTES = 32;
    private static final int PROOF_BYTES = 32;
    private static final byte[] ACCEPTOR = "collie acceptor".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] CONNECTOR = "collie connector".getBytes(StandardCharsets.US_ASCII);

    private Handshake() { }

    /**
     * Runs the connecting side over {@code s}.
     *
     * @param where the far end, for messages ({@code host:port})
     * @throws CollieException if the far end is not a collie rank or does not know this job's secret
     * @throws IOException if the connection fails or closes on the way (the caller may try again)
     */
    static void connect(Socket s, JobSecret secret, String where) throws IOException {
        byte[] nonceC = JobSecret.nonce(NONCE_BYTES);
        s.getOutputStream().write(ByteBuffer.allocate(8 + NONCE_BYTES).putInt(MAGIC).putInt(VERSION).put(nonceC).array());
        s.getOutputStream().flush();
        DataInputStream in = new DataInputStream(s.getInputStream());
        int magic = in.readInt();
        if (magic != MAGIC) {
            throw new CollieException("tcp rendezvous: the process at " + where + " is not a collie rank (it answered "
                    + String.format("0x%08x", magic) + "): another program on that port?");
        }
        int version = in.readInt();
        if (version != VERSION) {
            throw new CollieException("tcp rendezvous: the process at " + where + " speaks collie handshake version "
                    + version + ", this rank " + VERSION + "; do all ranks run the same collie?");
        }
        byte[] nonceS = new byte[NONCE_BYTES];
        in.readFully(nonceS);
        byte[] proofS = new byte[PROOF_BYTES];
        in.readFully(proofS);
        if (!secret.verify(proofS, ACCEPTOR, nonceC, nonceS)) {
            throw new CollieException("tcp rendezvous: the process at " + where + " did not accept this job's secret:"
                    + " another job on that port? (every rank of a job needs the same COLLIE_JOB_SECRET or"
                    + " COLLIE_JOB_SECRET_FILE)");
        }
        s.getOutputStream().write(secret.mac(CONNECTOR, nonceS, nonceC));
        s.getOutputStream().flush();
    }

    /**
     * Runs the accepting side over {@code s}; the socket's read timeout bounds the wait.
     *
     * @throws IOException saying why, if the far end is not a collie rank of this job (the caller drops it)
     */
    static void accept(Socket s, JobSecret secret) throws IOException {
        DataInputStream in = new DataInputStream(s.getInputStream());
        int magic = in.readInt();
        if (magic != MAGIC) {
            throw new IOException("not a collie handshake (first bytes " + String.format("0x%08x", magic) + ")");
        }
        int version = in.readInt();
        if (version != VERSION) {
            throw new IOException("collie handshake version " + version + ", expected " + VERSION);
        }
        byte[] nonceC = new byte[NONCE_BYTES];
        in.readFully(nonceC);
        byte[] nonceS = JobSecret.nonce(NONCE_BYTES);
        s.getOutputStream().write(ByteBuffer.allocate(8 + NONCE_BYTES + PROOF_BYTES).putInt(MAGIC).putInt(VERSION)
                .put(nonceS).put(secret.mac(ACCEPTOR, nonceC, nonceS)).array());
        s.getOutputStream().flush();
        byte[] proofC = new byte[PROOF_BYTES];
        in.readFully(proofC);
        if (!secret.verify(proofC, CONNECTOR, nonceS, nonceC)) {
            throw new IOException("wrong job secret");
        }
    }
}
