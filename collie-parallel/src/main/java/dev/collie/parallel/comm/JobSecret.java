package dev.collie.parallel.comm;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The secret every rank of one job shares (from {@code COLLIE_JOB_SECRET} or {@code COLLIE_JOB_SECRET_FILE},
 * see {@link LaunchEnv}); the tcp backend admits a connection only when its far end proves it knows the secret.
 * Its {@code toString} never shows the value.
 */
public final class JobSecret {
    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] key;

    private JobSecret(byte[] key) {
        this.key = key;
    }

    /** The secret whose value is {@code value} (its UTF-8 bytes, leading and trailing white space removed). */
    public static JobSecret of(String value) {
        String v = value.strip();
        if (v.isEmpty()) {
            throw new IllegalArgumentException("a job secret must not be empty");
        }
        return new JobSecret(v.getBytes(StandardCharsets.UTF_8));
    }

    /** A fresh value for a new job: 256 random bits as 64 hexadecimal digits. */
    public static String generate() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    /** {@code n} fresh random bytes (the handshake's nonces). */
    static byte[] nonce(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }

    /** HMAC-SHA256 under this secret of the parts, one after the other. */
    byte[] mac(byte[]... parts) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            for (byte[] p : parts) {
                mac.update(p);
            }
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every Java runtime", e);
        }
    }

    /** Whether {@code proof} is {@link #mac} of the parts, compared in constant time. */
    boolean verify(byte[] proof, byte[]... parts) {
        return MessageDigest.isEqual(mac(parts), proof);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof JobSecret s && MessageDigest.isEqual(key, s.key);
    }

    @Override
    public int hashCode() {
        return 0; // equal secrets must hash alike, and a hash of the key would leak a little of it
    }

    @Override
    public String toString() {
        return "JobSecret[hidden]";
    }
}
