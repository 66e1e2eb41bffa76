package dev.collie.examples.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What {@code collie launch} gives the processes it starts. */
class LaunchCommandTest {
    private static LaunchCommand launch(int nproc) {
        LaunchCommand c = new LaunchCommand();
        c.nproc = nproc;
        c.javaOpts = "-Xmx1g";
        c.command = List.of("train", "--backend", "tcp");
        return c;
    }

    /**
     * Every rank of a job gets the same fresh 256-bit secret in its environment (in place of a secret file the
     * launcher itself was given), a second job another one, and no command line shows it.
     */
    @Test
    void eachJobPassesItsRanksAFreshSecretInTheEnvironmentOnly() {
        LaunchCommand c = launch(3);
        Map<String, String> base = Map.of("COLLIE_JOB_SECRET_FILE", "/shared/secret", "HOME", "/home/u");
        List<Map<String, String>> envs = c.rankEnvironments(base, 29500);
        assertEquals(3, envs.size());
        String secret = envs.get(0).get("COLLIE_JOB_SECRET");
        assertTrue(secret != null && secret.matches("[0-9a-f]{64}"), String.valueOf(secret));
        for (int r = 0; r < 3; r++) {
            Map<String, String> env = envs.get(r);
            assertEquals(secret, env.get("COLLIE_JOB_SECRET"));
            assertFalse(env.containsKey("COLLIE_JOB_SECRET_FILE"), env.toString());
            assertEquals(Integer.toString(r), env.get("RANK"));
            assertEquals("3", env.get("WORLD_SIZE"));
            assertEquals("29500", env.get("MASTER_PORT"));
            assertEquals("/home/u", env.get("HOME"));
        }
        assertNotEquals(secret, c.rankEnvironments(base, 29500).get(0).get("COLLIE_JOB_SECRET"));
        List<String> cmd = c.rankCommand();
        assertTrue(cmd.containsAll(List.of("train", "--backend", "tcp")), cmd.toString());
        assertTrue(cmd.stream().noneMatch(a -> a.contains(secret) || a.contains("COLLIE_JOB_SECRET")), cmd.toString());
    }
}
