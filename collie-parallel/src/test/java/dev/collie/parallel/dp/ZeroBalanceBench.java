package dev.collie.parallel.dp;

import dev.collie.core.data.Datasets;
import dev.collie.core.data.Sample;
import dev.collie.core.dist.Communicator;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.StepStats;
import dev.collie.core.train.Trainer;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.optim.AdamW;
import dev.collie.parallel.comm.LocalCommunicators;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Per-rank ZeRO bytes on a LLaMA of the CLI bench's shape (default: the 134M model, hidden 768, 12 layers, vocab
 * 32000, untied, AdamW, fp32), ranks as threads, with the bytes each rank sends per step (the second step, after
 * the buckets are rebuilt). Runs with {@code -Dcollie.bench=true}, or as a main:
 * {@code ZeroBalanceBench DP STAGE [hidden layers heads intermediate vocab]}; {@code -Dzero.split=off|always}
 * builds ZeRO-2/3 with whole parameters only, or splitting every parameter over a quarter of a rank's share.
 */
@EnabledIfSystemProperty(named = "collie.bench", matches = "true")
class ZeroBalanceBench {
    private static final double MIB = 1048576.0;

    @Test
    void tinyTable() throws Exception {
        for (int dp : new int[] {2, 4}) {
            for (int stage = 1; stage <= 3; stage++) {
                run(dp, stage, ZeroHarnessTest.config(false), 12);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int dp = Integer.parseInt(args[0]);
        int stage = Integer.parseInt(args[1]);
        int hidden = args.length > 2 ? Integer.parseInt(args[2]) : 768;
        int layers = args.length > 3 ? Integer.parseInt(args[3]) : 12;
        int heads = args.length > 4 ? Integer.parseInt(args[4]) : 12;
        int inter = args.length > 5 ? Integer.parseInt(args[5]) : 2048;
        int vocab = args.length > 6 ? Integer.parseInt(args[6]) : 32000;
        DecoderConfig cfg = DecoderConfig.builder().vocabSize(vocab).hiddenSize(hidden).intermediateSize(inter)
                .numHiddenLayers(layers).numAttentionHeads(heads).numKeyValueHeads(heads).maxPositionEmbeddings(256)
                .tieWordEmbeddings(false).build();
        run(dp, stage, cfg, 128);
        System.exit(0);
    }

    private static SplitPolicy policy() {
        return switch (System.getProperty("zero.split", "default")) {
            case "off" -> SplitPolicy.OFF;
            case "always" -> SplitPolicy.always(0.25);
            default -> SplitPolicy.DEFAULT;
        };
    }

    private record RankResult(RankMemory memory, long optimizerBytes, long sentPerStep, long params, double loss,
                              List<String> split) {
    }

    static void run(int dp, int stage, DecoderConfig cfg, int seq) throws Exception {
        List<Communicator> comms = LocalCommunicators.create(dp, Duration.ofMinutes(10));
        ExecutorService pool = Executors.newFixedThreadPool(dp);
        try {
            List<Future<RankResult>> fs = new ArrayList<>();
            for (Communicator c : comms) {
                fs.add(pool.submit(() -> rank(c, dp, stage, cfg, seq)));
            }
            List<RankResult> rs = new ArrayList<>();
            for (Future<RankResult> f : fs) {
                rs.add(f.get());
            }
            long params = rs.get(0).params();
            System.out.printf("%n%,d parameters, dp %d, ZeRO-%d, AdamW fp32, split %s: %s; per rank (MiB):%n", params, dp,
                    stage, System.getProperty("zero.split", "default"), rs.get(0).split());
            System.out.println("rank | parameters | gradients | optimizer | buffers | p+g+os | share of 1/dp | sent/step MiB");
            long sum = 0;
            for (RankResult r : rs) {
                sum += r.memory().parameterBytes() + r.memory().gradientBytes() + r.optimizerBytes();
            }
            double mean = (double) sum / dp;
            for (int i = 0; i < dp; i++) {
                RankResult r = rs.get(i);
                RankMemory m = r.memory();
                long pgo = m.parameterBytes() + m.gradientBytes() + r.optimizerBytes();
                System.out.printf("%4d | %10.1f | %9.1f | %9.1f | %7.1f | %6.1f | %+12.1f%% | %.2f (%d B)%n", i,
                        m.parameterBytes() / MIB, m.gradientBytes() / MIB, r.optimizerBytes() / MIB,
                        m.bufferBytes() / MIB, pgo / MIB, 100.0 * (pgo - mean) / mean, r.sentPerStep() / MIB,
                        r.sentPerStep());
            }
            System.out.printf("loss after the steps: %.6f%n", rs.get(0).loss());
        } finally {
            pool.shutdownNow();
            comms.forEach(Communicator::close);
        }
    }

    private static RankResult rank(Communicator comm, int dp, int stage, DecoderConfig cfg, int seq) throws Exception {
        try {
            Nd4j.getRandom().setSeed(1);
            DecoderForCausalLM model = new DecoderForCausalLM(cfg, DataType.FLOAT);
            long params = model.parameterCount();
            Distributed sync;
            Map<String, Parameter> mine;
            switch (stage) {
                case 1 -> {
                    Zero1 z = new Zero1(model.namedParameters(), comm);
                    sync = z;
                    mine = z.ownedParameters();
                }
                case 2 -> {
                    Zero2 z = new Zero2(model.namedParameters(), comm, DataParallel.DEFAULT_BUCKET_BYTES, policy());
                    sync = z;
                    mine = z.ownedParameters();
                }
                default -> {
                    Zero3 z = new Zero3(model, comm, DataParallel.DEFAULT_BUCKET_BYTES, policy());
                    sync = z;
                    mine = z.ownedParameters();
                }
            }
            try {
                Optimizer o = new AdamW(mine, 0.9, 0.999, 1e-8, 0.01);
                Random r = new Random(100);
                List<Sample> rows = new ArrayList<>();
                for (int i = 0; i < 2 * dp; i++) {
                    int[] ids = new int[seq];
                    for (int j = 0; j < seq; j++) {
                        ids[j] = r.nextInt(cfg.vocabSize());
                    }
                    rows.add(Sample.causal(ids));
                }
                long[] sent = new long[2];
                Callback meter = new Callback() {
                    @Override
                    public void onBatchBegin(Trainer t, long step) {
                        sent[0] = comm.bytesSent();
                    }

                    @Override
                    public void onBatchEnd(Trainer t, StepStats st) {
                        sent[1] = comm.bytesSent() - sent[0];
                    }
                };
                CollieConfig config = CollieConfig.builder().shuffle(false).lr(1e-3).trainMicroBatchSize(1)
                        .maxSteps(2).workerThreads(1).build();
                List<StepStats> stats = Trainer.builder().model(model).optimizer(o).config(config)
                        .trainData(Datasets.of(rows)).distributed(sync).localRanks(dp).callbacks(meter).build().train();
                RankMemory m = switch (stage) {
                    case 1 -> ((Zero1) sync).memory();
                    case 2 -> ((Zero2) sync).memory();
                    default -> ((Zero3) sync).memory();
                };
                List<String> split = switch (stage) {
                    case 1 -> List.of();
                    case 2 -> ((Zero2) sync).splitParameters();
                    default -> ((Zero3) sync).splitParameters();
                };
                return new RankResult(m, o.stateBytes(), sent[1], params, stats.get(stats.size() - 1).loss(), split);
            } finally {
                ((AutoCloseable) sync).close();
            }
        } catch (RuntimeException | Error e) {
            comm.close();
            throw e;
        }
    }
}
