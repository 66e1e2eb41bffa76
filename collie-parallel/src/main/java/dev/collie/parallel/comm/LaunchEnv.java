package dev.collie.parallel.comm;

import dev.collie.core.CollieException;
import dev.collie.core.io.InputFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where this process sits in a distributed launch, read like CoLLiE from torchrun variables
 * ({@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}) or,
 * when {@code RANK} is absent and {@code SLURM_PROCID} present, from Slurm ({@code SLURM_PROCID},
 * {@code SLURM_LOCALID}, {@code SLURM_NTASKS}, {@code SLURM_JOB_NODELIST}: the first node is the master).
 * With neither, a single process (rank 0 of 1). Explicit {@code MASTER_ADDR}/{@code MASTER_PORT} win.
 *
 * <p>The job's secret, which every rank must share when there is more than one, comes from
 * {@code COLLIE_JOB_SECRET} (the value) or {@code COLLIE_JOB_SECRET_FILE} (a file only its owner can read, holding
 * it); {@code COLLIE_RENDEZVOUS_TIMEOUT} (seconds, default 120) bounds the wait for the other ranks.
 *
 * @param secret            the job's secret; {@code null} only in a world of one that was given none
 * @param rendezvousTimeout how long joining the world may take
 */
public record LaunchEnv(int rank, int localRank, int worldSize, String masterAddr, int masterPort, String launcher,
                        JobSecret secret, Duration rendezvousTimeout) {
    /** Default master port for torchrun-style launches. */
    public static final int TORCHRUN_DEFAULT_PORT = 27001;
    /** Default master port under Slurm, as CoLLiE. */
    public static final int SLURM_DEFAULT_PORT = 27002;
    /** The variable holding the job's secret (the same value for every rank). */
    public static final String JOB_SECRET = "COLLIE_JOB_SECRET";
    /** The variable naming a file that holds the job's secret (for launchers that share it as a file). */
    public static final String JOB_SECRET_FILE = "COLLIE_JOB_SECRET_FILE";
    /** The variable giving the rendezvous timeout in whole seconds. */
    public static final String RENDEZVOUS_TIMEOUT = "COLLIE_RENDEZVOUS_TIMEOUT";
    /** The rendezvous timeout when {@value #RENDEZVOUS_TIMEOUT} is not set. */
    public static final Duration DEFAULT_RENDEZVOUS_TIMEOUT = Duration.ofSeconds(120);

    /** Reads the process environment. */
    public static LaunchEnv fromSystem() {
        return from(System.getenv());
    }

    /** Reads the given variables (tests pass a map). */
    public static LaunchEnv from(Map<String, String> env) {
        int rank;
        int localRank;
        int world;
        String addr;
        int defaultPort;
        String launcher;
        if (present(env, "RANK")) {
            rank = number(env, "RANK");
            world = present(env, "WORLD_SIZE") ? number(env, "WORLD_SIZE") : missing("WORLD_SIZE", "RANK");
            localRank = present(env, "LOCAL_RANK") ? number(env, "LOCAL_RANK") : rank;
            addr = "127.0.0.1";
            defaultPort = TORCHRUN_DEFAULT_PORT;
            launcher = "torchrun";
        } else if (present(env, "SLURM_PROCID")) {
            rank = number(env, "SLURM_PROCID");
            world = present(env, "SLURM_NTASKS") ? number(env, "SLURM_NTASKS") : missing("SLURM_NTASKS", "SLURM_PROCID");
            localRank = present(env, "SLURM_LOCALID") ? number(env, "SLURM_LOCALID") : 0;
            addr = present(env, "SLURM_JOB_NODELIST") ? parseNodeList(env.get("SLURM_JOB_NODELIST")).get(0) : "127.0.0.1";
            defaultPort = SLURM_DEFAULT_PORT;
            launcher = "slurm";
        } else {
            rank = 0;
            world = present(env, "WORLD_SIZE") ? number(env, "WORLD_SIZE") : 1;
            localRank = 0;
            addr = "127.0.0.1";
            defaultPort = TORCHRUN_DEFAULT_PORT;
            launcher = "single";
        }
        if (present(env, "MASTER_ADDR")) {
            addr = env.get("MASTER_ADDR").trim();
        }
        int port = present(env, "MASTER_PORT") ? number(env, "MASTER_PORT") : defaultPort;
        String rankVar = launcher.equals("slurm") ? "SLURM_PROCID" : "RANK";
        String worldVar = launcher.equals("slurm") ? "SLURM_NTASKS" : "WORLD_SIZE";
        if (world < 1) {
            throw new CollieException(worldVar + " must be at least 1, got " + world);
        }
        if (rank < 0 || rank >= world) {
            throw new CollieException(rankVar + " " + rank + " must be in [0, " + worldVar + " " + world + ")");
        }
        if (localRank < 0 || localRank > rank && !launcher.equals("single")) {
            throw new CollieException("local rank " + localRank + " is inconsistent with " + rankVar + " " + rank);
        }
        if (port < 1 || port > 65535) {
            throw new CollieException("MASTER_PORT " + port + " is outside [1, 65535]");
        }
        return new LaunchEnv(rank, localRank, world, addr, port, launcher, secret(env, world, worldVar),
                rendezvousTimeout(env));
    }

    private static JobSecret secret(Map<String, String> env, int world, String worldVar) {
        boolean value = present(env, JOB_SECRET);
        boolean file = present(env, JOB_SECRET_FILE);
        if (value && file) {
            throw new CollieException("both " + JOB_SECRET + " and " + JOB_SECRET_FILE + " are set; set one of them");
        }
        if (value) {
            return JobSecret.of(env.get(JOB_SECRET));
        }
        if (file) {
            return JobSecret.of(readSecretFile(Path.of(env.get(JOB_SECRET_FILE).trim())));
        }
        if (world > 1) {
            throw new CollieException(worldVar + " is " + world + " but the job has no secret: set " + JOB_SECRET
                    + " (the same value for every rank, e.g. from `openssl rand -hex 32`) or " + JOB_SECRET_FILE
                    + " (a file that only its owner can read, holding the value); `collie launch` sets one itself");
        }
        return null;
    }

    /** The secret in {@code file}, which must exist, be readable by its owner only, and not be empty. */
    private static String readSecretFile(Path file) {
        String what = "the job secret file that " + JOB_SECRET_FILE + " names";
        String value = InputFiles.read(file, what, f -> {
            Set<PosixFilePermission> mode;
            try {
                mode = Files.getPosixFilePermissions(f);
            } catch (UnsupportedOperationException e) {
                mode = Set.of(); // not a POSIX file system: nothing to check
            }
            if (mode.contains(PosixFilePermission.GROUP_READ) || mode.contains(PosixFilePermission.OTHERS_READ)) {
                throw new CollieException(f + ": " + what + " can be read by other users ("
                        + PosixFilePermissions.toString(mode) + "); make it readable by its owner only: chmod 600 " + f);
            }
            return Files.readString(f);
        });
        if (value.isBlank()) {
            throw new CollieException(file + ": " + what + " is empty");
        }
        return value;
    }

    private static Duration rendezvousTimeout(Map<String, String> env) {
        if (!present(env, RENDEZVOUS_TIMEOUT)) {
            return DEFAULT_RENDEZVOUS_TIMEOUT;
        }
        int seconds = number(env, RENDEZVOUS_TIMEOUT);
        if (seconds < 1) {
            throw new CollieException(RENDEZVOUS_TIMEOUT + " must be at least 1 (seconds), got " + seconds);
        }
        return Duration.ofSeconds(seconds);
    }

    /** Expands a Slurm node list such as {@code gpu[01-03,07],login1} into host names, in order. */
    public static List<String> parseNodeList(String list) {
        List<String> out = new ArrayList<>();
        String s = list == null ? "" : list.trim();
        int i = 0;
        while (i < s.length()) {
            int start = i;
            int depth = 0;
            while (i < s.length() && (depth > 0 || s.charAt(i) != ',')) {
                if (s.charAt(i) == '[') {
                    depth++;
                } else if (s.charAt(i) == ']') {
                    depth--;
                }
                i++;
            }
            expand(s.substring(start, i), list, out);
            i++;
        }
        if (out.isEmpty()) {
            throw new CollieException("SLURM_JOB_NODELIST '" + list + "' names no node");
        }
        return out;
    }

    private static void expand(String item, String list, List<String> out) {
        int open = item.indexOf('[');
        if (open < 0) {
            if (!item.isEmpty()) {
                out.add(item);
            }
            return;
        }
        int close = item.indexOf(']', open);
        if (close < 0) {
            throw new CollieException("SLURM_JOB_NODELIST '" + list + "': unclosed '[' in '" + item + "'");
        }
        String prefix = item.substring(0, open);
        String suffix = item.substring(close + 1);
        for (String range : item.substring(open + 1, close).split(",")) {
            String[] ab = range.trim().split("-", -1);
            try {
                if (ab.length == 1) {
                    expand(prefix + ab[0] + suffix, list, out);
                } else if (ab.length == 2) {
                    int a = Integer.parseInt(ab[0]);
                    int b = Integer.parseInt(ab[1]);
                    if (b < a) {
                        throw new CollieException("SLURM_JOB_NODELIST '" + list + "': range " + range + " is reversed");
                    }
                    int width = ab[0].length();
                    for (int k = a; k <= b; k++) {
                        expand(prefix + String.format("%0" + width + "d", k) + suffix, list, out);
                    }
                } else {
                    throw new NumberFormatException(range);
                }
            } catch (NumberFormatException e) {
                throw new CollieException("SLURM_JOB_NODELIST '" + list + "': '" + range + "' is not a number or range", e);
            }
        }
    }

    private static boolean present(Map<String, String> env, String key) {
        String v = env.get(key);
        return v != null && !v.isBlank();
    }

    private static int number(Map<String, String> env, String key) {
        String v = env.get(key).trim();
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new CollieException(key + " must be an integer, got '" + v + "'", e);
        }
    }

    private static int missing(String key, String because) {
        throw new CollieException(key + " is not set, but " + because + " is");
    }
}
