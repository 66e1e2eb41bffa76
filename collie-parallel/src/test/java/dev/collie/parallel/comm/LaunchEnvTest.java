package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LaunchEnvTest {
    @Test
    void torchrunVariablesAreReadWithDefaults() {
        LaunchEnv e = LaunchEnv.from(Map.of("RANK", "3", "LOCAL_RANK", "1", "WORLD_SIZE", "4"));
        assertEquals(new LaunchEnv(3, 1, 4, "127.0.0.1", 27001, "torchrun"), e);
        LaunchEnv m = LaunchEnv.from(Map.of("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "10.0.0.5",
                "MASTER_PORT", "29500"));
        assertEquals("10.0.0.5", m.masterAddr());
        assertEquals(29500, m.masterPort());
    }

    @Test
    void noVariablesMeanASingleProcess() {
        assertEquals(new LaunchEnv(0, 0, 1, "127.0.0.1", 27001, "single"), LaunchEnv.from(Map.of()));
    }

    @Test
    void slurmVariablesTakeTheFirstNodeAsMasterOnPort27002() {
        LaunchEnv e = LaunchEnv.from(Map.of("SLURM_PROCID", "5", "SLURM_LOCALID", "1", "SLURM_NTASKS", "8",
                "SLURM_JOB_NODELIST", "gpu[07-08,11],login1"));
        assertEquals(new LaunchEnv(5, 1, 8, "gpu07", 27002, "slurm"), e);
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
                () -> LaunchEnv.from(Map.of("RANK", "4", "WORLD_SIZE", "4")));
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
    }
}
