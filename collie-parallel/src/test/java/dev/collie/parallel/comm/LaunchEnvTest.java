package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LaunchEnvTest {
    private static final Duration DEFAULT = LaunchEnv.DEFAULT_RENDEZVOUS_TIMEOUT;

    @Test
    void torchrunVariablesAreReadWithDefaults() {
        LaunchEnv e = LaunchEnv.from(Map.of("RANK", "3", "LOCAL_RANK", "1", "WORLD_SIZE", "4", "COLLIE_JOB_SECRET", "s"));
        assertEquals(new LaunchEnv(3, 1, 4, "127.0.0.1", 27001, "torchrun", JobSecret.of("s"), DEFAULT), e);
        assertEquals(Duration.ofSeconds(120), e.rendezvousTimeout());
        LaunchEnv m = LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "10.0.0.5",
                "MASTER_PORT", "29500", "COLLIE_JOB_SECRET", "s"));
        assertEquals("10.0.0.5", m.masterAddr());
        assertEquals(29500, m.masterPort());
    }

    @Test
    void noVariablesMeanASingleProcess() {
        assertEquals(new LaunchEnv(0, 0, 1, "127.0.0.1", 27001, "single", null, DEFAULT), LaunchEnv.from(Map.of()));
    }

    @Test
    void slurmVariablesTakeTheFirstNodeAsMasterOnPort27002() {
        LaunchEnv e = LaunchEnv.from(Map.of("SLURM_PROCID", "5", "SLURM_LOCALID", "1", "SLURM_NTASKS", "8",
                "SLURM_JOB_NODELIST", "gpu[07-08,11],login1", "COLLIE_JOB_SECRET", "s"));
        assertEquals(new LaunchEnv(5, 1, 8, "gpu07", 27002, "slurm", JobSecret.of("s"), DEFAULT), e);
    }

    @Test
    void slurmNodeListsExpandBracketRangesKeepingZeroPadding() {
        assertEquals(List.of("node01", "node02", "node03", "node07"), LaunchEnv.parseNodeList("node[01-03,07]"));
        assertEquals(List.of("a", "b1", "b2", "c9"), LaunchEnv.parseNodeList("a,b[1-2],c9"));
        assertThrows(CollieException.class, () -> LaunchEnv.parseNodeList("node[01-x]"));
        assertThrows(CollieException.class, () -> LaunchEnv.parseNodeList("node[01-03"));
    }

    @Test
    void inconsistentOrMalformedValuesAreRejectedNamingTheVariable() {
        CollieException r = assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("RANK", "4", "WORLD_SIZE", "4", "COLLIE_JOB_SECRET", "s")));
        assertEquals("RANK 4 must be in [0, WORLD_SIZE 4)", r.getMessage());
        CollieException n = assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("RANK", "x", "WORLD_SIZE", "4")));
        assertEquals("RANK must be an integer, got 'x'", n.getMessage());
        CollieException w = assertThrows(CollieException.class, () -> LaunchEnv.from(Map.of("RANK", "0")));
        assertTrue(w.getMessage().contains("WORLD_SIZE is not set"), w.getMessage());
        assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("SLURM_PROCID", "2", "SLURM_NTASKS", "2")));
        assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "1", "MASTER_PORT", "70000")));
        CollieException t = assertThrows(CollieException.class, () -> LaunchEnv.from(Map.of("RANK", "0",
                "WORLD_SIZE", "1", "COLLIE_RENDEZVOUS_TIMEOUT", "0")));
        assertEquals("COLLIE_RENDEZVOUS_TIMEOUT must be at least 1 (seconds), got 0", t.getMessage());
    }

    @Test
    void theRendezvousTimeoutIsReadInSeconds() {
        assertEquals(Duration.ofSeconds(7), LaunchEnv.from(Map.of("COLLIE_RENDEZVOUS_TIMEOUT", "7")).rendezvousTimeout());
    }

    @Test
    void moreThanOneRankWithoutASecretIsRefusedNamingBothVariables() {
        CollieException e = assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("RANK", "1", "WORLD_SIZE", "2")));
        assertEquals("WORLD_SIZE is 2 but the job has no secret: set COLLIE_JOB_SECRET (the same value for every rank,"
                + " e.g. from `openssl rand -hex 32`) or COLLIE_JOB_SECRET_FILE (a file that only its owner can read,"
                + " holding the value); `collie launch` sets one itself", e.getMessage());
        CollieException slurm = assertThrows(CollieException.class,
                () -> LaunchEnv.from(Map.of("SLURM_PROCID", "0", "SLURM_NTASKS", "4")));
        assertTrue(slurm.getMessage().startsWith("SLURM_NTASKS is 4 but the job has no secret"), slurm.getMessage());
        assertNull(LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "1")).secret(), "one rank needs no secret");
        CollieException both = assertThrows(CollieException.class, () -> LaunchEnv.from(Map.of("RANK", "1",
                "WORLD_SIZE", "2", "COLLIE_JOB_SECRET", "s", "COLLIE_JOB_SECRET_FILE", "/x")));
        assertEquals("both COLLIE_JOB_SECRET and COLLIE_JOB_SECRET_FILE are set; set one of them", both.getMessage());
    }

    @Test
    void theSecretFileIsReadAndMustExistBeNonEmptyAndPrivate(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("secret");
        Files.writeString(file, "s3cret\n");
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
        assertEquals(JobSecret.of("s3cret"), fromFile(file).secret());

        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
        CollieException shared = assertThrows(CollieException.class, () -> fromFile(file));
        assertEquals(file + ": the job secret file that COLLIE_JOB_SECRET_FILE names can be read by other users"
                + " (rw-r--r--); make it readable by its owner only: chmod 600 " + file, shared.getMessage());

        Path empty = dir.resolve("empty");
        Files.writeString(empty, " \n");
        Files.setPosixFilePermissions(empty, PosixFilePermissions.fromString("rw-------"));
        CollieException blank = assertThrows(CollieException.class, () -> fromFile(empty));
        assertEquals(empty + ": the job secret file that COLLIE_JOB_SECRET_FILE names is empty", blank.getMessage());

        Path missing = dir.resolve("missing");
        CollieException none = assertThrows(CollieException.class, () -> fromFile(missing));
        assertEquals(missing + ": no such file (the job secret file that COLLIE_JOB_SECRET_FILE names)",
                none.getMessage());
    }

    private static LaunchEnv fromFile(Path secretFile) {
        return LaunchEnv.from(Map.of("RANK", "1", "WORLD_SIZE", "2", "COLLIE_JOB_SECRET_FILE", secretFile.toString()));
    }

    @Test
    void aSecretIsNeverShownAndAGeneratedOneIs256RandomBitsInHex() {
        LaunchEnv e = LaunchEnv.from(Map.of("RANK", "1", "WORLD_SIZE", "2", "COLLIE_JOB_SECRET", "hunter2"));
        assertFalse(e.toString().contains("hunter2"), e.toString());
        String a = JobSecret.generate();
        assertTrue(a.matches("[0-9a-f]{64}"), a);
        assertNotEquals(a, JobSecret.generate());
        assertNotEquals(JobSecret.of(a), JobSecret.of(JobSecret.generate()));
    }
}
