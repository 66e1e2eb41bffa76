package dev.collie.examples.cli;

import dev.collie.core.CollieException;
import dev.collie.core.data.Dataset;
import dev.collie.core.data.Datasets;
import dev.collie.core.dist.Communicator;
import dev.collie.core.io.DirectoryLock;
import dev.collie.core.io.HfCheckpoint;
import dev.collie.core.io.HfWeights;
import dev.collie.core.io.ModelDirectory;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.tensor.Backends;
import dev.collie.core.tensor.MatmulPrecision;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.core.train.Callback;
import dev.collie.core.train.CollieConfig;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.LossHistory;
import dev.collie.core.train.ProgressBar;
import dev.collie.core.train.Trainer;
import dev.collie.core.train.monitor.Monitor;
import dev.collie.core.train.monitor.MonitorConfig;
import dev.collie.core.train.monitor.MonitorSink;
import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import dev.collie.serve.OpenAiServer;
import dev.collie.serve.ServeCallback;
import dev.collie.parallel.Parallelism;
import dev.collie.parallel.comm.LaunchEnv;
import dev.collie.parallel.comm.LocalRanks;
import dev.collie.parallel.comm.NcclCommunicator;
import dev.collie.parallel.comm.TcpCommunicator;
import dev.collie.peft.PeftModel;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * {@code collie train}: trains a LLaMA (from a Hugging Face directory or a named preset) on a data file and saves
 * a Hugging Face directory that {@code transformers} loads unchanged. Options given on the command line override
 * the values of {@code --config}.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a LLaMA model and save it as a Hugging Face directory.",
            "Data: .jsonl/.json samples ({\"text\"}, {\"input\",\"output\"} or {\"tokens\"}) or .txt plain text,"
                + " packed into rows of --seq tokens."})
final class TrainCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model directory to start from")
    Path model;
    @Option(names = "--preset", paramLabel = "NAME", description = "train from scratch: tiny, small or medium")
    String preset;
    @Option(names = "--data", paramLabel = "FILE", description = ".jsonl, .json or .txt training data")
    Path data;
    @Option(names = "--tokenizer", paramLabel = "DIR",
            description = "tokenizer.json or its directory (default: the model directory, when it has one)")
    Path tokenizerPath;
    @Option(names = "--vocab", paramLabel = "N",
            description = "vocabulary size of a --preset model without a tokenizer")
    Integer vocab;
    @Option(names = "--save", paramLabel = "DIR", description = "where to write the trained model")
    Path save;
    @Option(names = "--max-shard-size", paramLabel = "SIZE", defaultValue = "50GB",
            description = "--save writes model-0000k-of-0000n.safetensors shards of at most SIZE (bytes, or KB, MB,"
                    + " GB, TB as transformers counts them: 1GB = 10^9 bytes) with model.safetensors.index.json"
                    + " when the model is larger (default ${DEFAULT-VALUE}, as save_pretrained)")
    String maxShardSize;
    /** {@link #maxShardSize} in bytes. */
    private long shardBytes;
    @Mixin OptimizerOptions opt;
    @Mixin PeftOptions peft;
    @Mixin MatmulOption matmul;
    /** The precision this run's products use, set before any rank starts. */
    private MatmulOption.Scope matmuls;
    @Mixin ActivationOption activation;
    @Option(names = "--steps", paramLabel = "N",
            description = "optimizer steps; alone, the data is repeated as needed (default: all of --epochs)")
    Long steps;
    @Option(names = "--epochs", paramLabel = "N",
            description = "passes over the data (default 1; with --steps, at most this many)")
    Integer epochs;
    @Option(names = "--micro-batch", paramLabel = "B", description = "rows per forward/backward (default 1)")
    Integer microBatch;
    @Option(names = "--grad-accum", paramLabel = "K", description = "micro-batches per optimizer step (default 1)")
    Integer gradAccum;
    @Option(names = "--seq", paramLabel = "T", defaultValue = "256",
            description = "row length of packed text; longer JSONL samples are cut to it (default: seq_len of --config,"
                    + " else ${DEFAULT-VALUE})")
    int seq;
    @Option(names = "--seed", paramLabel = "S",
            description = "seed of shuffling, the eval split and a preset's weights")
    Long seed;
    @Option(names = "--no-shuffle", description = "take the rows in file order") boolean noShuffle;
    @Option(names = "--eval-fraction", paramLabel = "F", defaultValue = "0",
            description = "hold out this fraction of the rows for evaluation")
    double evalFraction;
    @Option(names = "--eval-every", paramLabel = "N", description = "evaluate every N steps (default: at the end)")
    Integer evalEvery;
    @Mixin EvalTaskOptions evalTask;
    @Option(names = "--lr-schedule", paramLabel = "NAME", description = "constant, linear or cosine")
    String lrSchedule;
    @Option(names = "--warmup", paramLabel = "N", description = "linear warm-up steps") Long warmup;
    @Option(names = "--clip-grad-norm", paramLabel = "X", description = "clip the global gradient norm (0 = off)")
    Double clipGradNorm;
    @Option(names = "--max-nonfinite-steps", paramLabel = "N",
            description = "a step with a non-finite loss or gradient norm is skipped; stop after N in a row (default 3)")
    Integer maxNonFiniteSteps;
    @Option(names = "--checkpointing", description = "recompute each block in backward (less memory)")
    boolean checkpointing;
    @Option(names = "--dp", paramLabel = "N",
            description = "data-parallel ranks; each takes its share of every global batch of micro-batch x grad-accum x N rows"
                    + " (default: dp_size of --config, else 1)")
    Integer dpOption;
    /** What call() returns: 0, or the code of the signal that stopped the run (set by the lead rank). */
    private volatile int exitCode;
    /** The layout this run takes: the options, else the config file's sizes, else 1 (resolved in {@link #call()}). */
    private int dp;
    private int tp;
    private int pp;
    /** The model's config, read or made in {@link #call()} before any rank builds the model. */
    private DecoderConfig modelConfig;
    /** Ranks of this job running on this machine (threads or processes); set for tcp from LOCAL_WORLD_SIZE. */
    private int localRanks;
    @Option(names = "--tp", paramLabel = "N",
            description = "tensor-parallel ranks: each holds 1/N of every attention and MLP layer and of the vocabulary"
                    + " (default: tp_size of --config, else 1)")
    Integer tpOption;
    @Option(names = "--pp", paramLabel = "N",
            description = "pipeline stages, run with the 1F1B schedule over the --grad-accum micro-batches"
                    + " (default: pp_size of --config, else 1)")
    Integer ppOption;
    @Option(names = "--pp-partition", paramLabel = "METHOD", defaultValue = "parameters",
            description = "how layers are cut into stages: parameters (balanced counts), uniform, or type:REGEX (default ${DEFAULT-VALUE})")
    String ppPartition;
    @Option(names = "--zero", paramLabel = "STAGE", defaultValue = "0",
            description = "ZeRO stage under --dp: 0 (replicated), 1 (optimizer state sharded), 2 (and gradients),"
                    + " 3 (and parameters, gathered around their use; not with --pp)")
    int zero;
    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "local",
            description = "how ranks talk: local (threads of this JVM; default), tcp (one process per rank:"
                    + " collie launch --nproc N -- train ... --backend tcp) or nccl (one process per GPU)")
    String backend;
    @Option(names = "--workers", paramLabel = "N",
            description = "threads sharing the model, each taking part of every micro-batch's rows (default: one per core)")
    Integer workers;
    @Option(names = "--checkpoint-every", paramLabel = "N",
            description = "write a training checkpoint (weights, optimizer state, position) every N steps")
    Long checkpointEvery;
    @Option(names = "--checkpoint-dir", paramLabel = "DIR",
            description = "where checkpoints go, as DIR/step_N (and --save-top-k's, --load-best's best; default:"
                    + " <--save>/checkpoints)")
    Path checkpointDir;
    @Option(names = "--keep-checkpoints", paramLabel = "K", defaultValue = "2",
            description = "keep the newest K checkpoints, 0 = all (default ${DEFAULT-VALUE})")
    int keepCheckpoints;
    @Option(names = "--resume", paramLabel = "DIR", description = "continue exactly from a training checkpoint")
    Path resume;
    @Mixin WatchOptions watch;
    @Option(names = "--config", paramLabel = "FILE", description = "CoLLiE config (.json or .yaml) to start from")
    Path configFile;
    @Option(names = "--loss-png", paramLabel = "FILE", description = "write the loss curve to this PNG")
    Path lossPng;
    @Option(names = "--monitor", paramLabel = "NAMES", split = ",",
            description = "write the run's figures (loss, lr, TGS, tokens/s, grad norm, memory, communicator bytes,"
                    + " evaluations) into --monitor-dir as any of csv (metrics.csv, eval.csv), jsonl (metrics.jsonl)"
                    + " and tensorboard (events.out.tfevents.*), and dashboard.png at the end")
    List<String> monitor;
    @Option(names = "--monitor-dir", paramLabel = "DIR", description = "where --monitor writes")
    Path monitorDir;
    @Option(names = "--monitor-every", paramLabel = "N", defaultValue = "1",
            description = "--monitor logs every N steps and the last (default ${DEFAULT-VALUE})")
    int monitorEvery;
    @Option(names = "--serve", paramLabel = "PORT", description = "serve the model being trained with OpenAI's API on"
            + " 127.0.0.1:PORT (as collie serve; each request sees the weights of one finished step; the key of"
            + " COLLIE_API_KEY if set; 0 picks a free port)")
    Integer servePort;
    @Option(names = "--log-every", paramLabel = "N", defaultValue = "10",
            description = "progress line every N steps when the output is not a terminal (default ${DEFAULT-VALUE})")
    int logEvery;

    @Override
    public Integer call() {
        CollieConfig config = config();
        seq = config.seqLen();
        dp = config.dpSize();
        tp = config.tpSize();
        pp = config.ppSize();
        checkOptions();
        evalTask.check();
        watch.check(evaluationKeys(), config.evalPerNSteps());
        shardBytes = CliSupport.byteSize("--max-shard-size", maxShardSize);
        config.validate();
        if (CollieCli.standalone) {
            StopSignals.install(signal -> { });
        }
        // the process that saves holds --save for the run, and finds a save that cannot happen before any work
        boolean savesHere = !"tcp".equals(backend) && !"nccl".equals(backend) || LaunchEnv.fromSystem().rank() == 0;
        if (savesHere) {
            ModelDirectory.checkWritable(save, savedContent(), model == null ? 0 : CliSupport.weightBytes(model));
        }
        HfTokenizer tok = CliSupport.tokenizer(tokenizerPath, model);
        if (servePort != null && tok == null) {
            throw new CollieException("--serve needs a tokenizer for the requests' text: " + (model != null ? model
                    + " has no tokenizer.json; " : "") + "give --tokenizer DIR");
        }
        if (evalTask.active() && tok == null) {
            throw new CollieException("--eval-task needs a tokenizer for its examples: " + (model != null ? model
                    + " has no tokenizer.json; " : "") + "give --tokenizer DIR");
        }
        try (DirectoryLock saveLock = savesHere ? DirectoryLock.acquire(save) : null) {
            modelConfig = model != null ? CliSupport.modelConfig(model) : presetConfig(tok);
            CliSupport.requireTokenizerFits(tok, modelConfig, model);
            // local ranks are threads, each building the whole model before it keeps its share
            CliSupport.requireStepMemory(modelConfig, config.trainMicroBatchSize(), seq,
                    "local".equals(backend) ? world() : 1, !peft.active() && !opt.fusedBackward(),
                    "use a smaller --seq or --micro-batch");
            // auto times the products of one micro-batch (once per process, before any rank starts)
            long rows = (long) config.trainMicroBatchSize() * seq;
            try (MatmulOption.Scope scope = matmul.apply(() -> modelConfig.matmulShapes(rows))) {
                matmuls = scope;
                switch (backend) {
                    case "local" -> {
                        if (world() == 1) {
                            rank(config, tok, null);
                        } else {
                            localRanks(config, tok);
                        }
                    }
                    case "tcp", "nccl" -> processRank(config, tok);
                    default -> throw new CollieException("--backend " + backend + ": expected local (ranks as threads"
                            + " of this JVM), tcp (one process per rank, started by 'collie launch', torchrun or Slurm)"
                            + " or nccl (one process per GPU)");
                }
            }
        } finally {
            if (tok != null) {
                tok.close();
            }
        }
        return exitCode;
    }

    /** An adapter directory with PEFT flags (unless merged), else a full model. */
    private ModelDirectory.Content savedContent() {
        return peft.active() && !peft.existing.merge ? ModelDirectory.Content.ADAPTER : ModelDirectory.Content.MODEL;
    }

    private int world() {
        return dp * tp * pp;
    }

    /**
     * This process is one rank of the job over TCP; the environment says which ({@code RANK},
     * {@code WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT}, as torchrun and Slurm set it, and the job's
     * secret, see {@link LaunchEnv}). Without
     * {@code --dp} (or a {@code dp_size} in the config), the data-parallel size is what WORLD_SIZE leaves after the
     * tensor- and pipeline-parallel sizes.
     */
    private void processRank(CollieConfig config, HfTokenizer tok) {
        LaunchEnv env = LaunchEnv.fromSystem();
        if (dpOption == null && dp == 1 && env.worldSize() % (tp * pp) == 0) {
            dp = env.worldSize() / (tp * pp);
            config = config.toBuilder().dpSize(dp).build();
        }
        if (world() != env.worldSize()) {
            throw new CollieException("--dp " + dp + " × --tp " + tp + " × --pp " + pp + " = " + world()
                    + " does not match WORLD_SIZE " + env.worldSize());
        }
        String local = System.getenv("LOCAL_WORLD_SIZE");
        localRanks = local == null ? 1 : Integer.parseInt(local);
        try (Communicator comm = "nccl".equals(backend) ? NcclCommunicator.connect(env, Duration.ofMinutes(10))
                : TcpCommunicator.connect(env, Duration.ofMinutes(10))) {
            rank(config, tok, env.worldSize() == 1 ? null : comm);
        }
    }

    /** dp × tp × pp ranks as threads of this JVM; world rank 0 reports and saves. */
    private void localRanks(CollieConfig config, HfTokenizer tok) {
        LocalRanks.run(world(), Duration.ofMinutes(10), c -> {
            rank(config, tok, c);
            return null;
        });
    }

    /** One rank's run; {@code comm} (the world) is null for a single rank. */
    private void rank(CollieConfig config, HfTokenizer tok, Communicator comm) {
        boolean lead = comm == null || comm.rank() == 0;
        // ND4J's generator is per thread: every rank (thread or process) draws new weights (a LoRA adapter's A)
        // from the same seed, as one rank would
        Nd4j.getRandom().setSeed(config.seed());
        // a split model's ranks read only their stage's tensors, each sliced to its tensor-parallel share
        boolean loadOwnPart = comm != null && model != null && (tp > 1 || pp > 1) && !peft.active();
        DecoderForCausalLM net = loadOwnPart ? CliSupport.modelFromConfig(model) : createModel(config.seed());
        int vocabSize = net.config().vocabSize();
        Dataset all = Datasets.open(data, tok, seq, vocabSize);
        Dataset train = all;
        Dataset eval = null;
        if (evalFraction > 0) {
            Datasets.Split split = Datasets.split(all, evalFraction, config.seed());
            train = split.train();
            eval = split.eval();
        }
        ActivationCheckpointing.apply(net, config.checkpointing());
        LanguageModel lm = peft.apply(net, model);                 // the model itself without PEFT flags
        LanguageModel peftModel = lm;
        Map<String, Parameter> trainable = peft.trainableParameters(lm);
        long parameterCount = net.parameterCount();      // before tensor parallel leaves this rank a shard
        Parallelism par = null;
        if (comm != null) {
            // every rank built the same model; it keeps its tensor-parallel shard of its stage
            par = Parallelism.builder().dp(dp).tp(tp).pp(pp).zero(zero).partition(ppPartition)
                    .splitLargeParameters(!opt.fusedBackward())
                    .build(comm, lm, trainable);
            lm = par.model();
            trainable = par.optimizerParameters();       // under ZeRO, this replica's share
            if (loadOwnPart) {
                try (HfWeights w = HfCheckpoint.open(model)) {
                    par.loadWeights(w);
                }
            }
        }
        Optimizer optimizer = opt.create(trainable);
        if (zero == 1 && optimizer.fusedBackward()) {
            throw new CollieException("--zero 1 shards optimizer state; " + opt.name + " keeps none that matters"
                    + " and updates inside backward: use --zero 0, 2 or 3");
        }
        LossHistory history = new LossHistory();
        Trainer.Builder tb = Trainer.builder().model(lm).optimizer(optimizer).config(config).trainData(train)
                .evalData(eval).padId(tok != null ? tok.padId() : 0).callbacks(history)
                .localRanks(localRanks > 0 ? localRanks : world());
        if (evalTask.active()) {
            // each replica evaluates its share of the examples; the model is whole on every rank (no --tp, --pp)
            tb.evaluations(evalTask.evaluator(lm, tok, CliSupport.eosIds(net.config(), tok),
                    par != null ? par.dataParallelGroup() : null));
        }
        if (par != null) {
            par.configure(tb);
        }
        if (lead && servePort != null) {
            // before the callbacks that may load other weights when training ends
            ServeCallback serve = new ServeCallback(OpenAiServer.builder(lm, tok).port(servePort)
                    .modelName(model != null ? model.toAbsolutePath().normalize().getFileName().toString() : preset)
                    .contextLength(net.config().maxPositionEmbeddings()).eosIds(CliSupport.eosIds(net.config(), tok))
                    .apiKey(System.getenv("COLLIE_API_KEY")));
            tb.callbacks(serve, new Callback() {
                @Override
                public void onTrainBegin(Trainer trainer) {
                    System.out.println("serving the model being trained at " + serve.server().url());
                }
            });
        }
        if (lead) {
            tb.callbacks(new ProgressBar(System.out, System.console() != null, logEvery));
            if (monitor != null) {
                tb.callbacks(new Monitor(monitorConfig(), par != null ? par::bytesSent : null));
            }
        }
        Path checkpoints = checkpointDir != null ? checkpointDir : save.resolve("checkpoints");
        tb.callbacks(watch.callbacks(checkpoints, checkpointEvery, keepCheckpoints));
        tb.stopWhen(StopSignals::requested);
        Trainer trainer = tb.build();
        if (resume != null) {
            trainer.resume(resume);
            if (lead) {
                System.out.printf(Locale.ROOT, "resumed from %s at step %d%n", resume, trainer.globalStep());
            }
        }
        if (lead) {
            System.out.printf(Locale.ROOT, "model: %,d parameters (%s); data: %d training rows%s; %d steps%s%n",
                    parameterCount, model != null ? model : "preset " + preset, train.size(),
                    eval != null ? ", " + eval.size() + " eval rows" : "", trainer.totalSteps(),
                    world() > 1 ? String.format(Locale.ROOT, "; dp %d × tp %d × pp %d ranks", dp, tp, pp) : "");
            if (Backends.matmulPrecision() == MatmulPrecision.BF16) {
                System.out.println("matmuls: " + MatmulOption.describe(matmuls));
            }
        }
        boolean split = tp > 1 || pp > 1;
        Map<String, Double> lastEval = null;
        Map<String, INDArray> gathered = null;
        try {
            trainer.train();
            if (trainer.stopped()) {
                stopWithCheckpoint(trainer, checkpoints, lead);
                return;
            }
            // evaluation under tensor or pipeline parallelism takes every rank of the model, and an --eval-task's
            // every data-parallel rank
            if ((eval != null || evalTask.active()) && (config.evalPerNSteps() == 0
                    || trainer.globalStep() % config.evalPerNSteps() != 0 || watch.loadBest)
                    && (lead || split || evalTask.active())) {
                lastEval = trainer.evaluate();
            } else if (history.lastEval() != null) {
                lastEval = history.lastResults();
            }
            if (par != null && (split || zero == 3)) {
                gathered = par.gatherFullWeights();      // a collective: the whole model on the lead rank
            }
        } finally {
            if (par != null) {
                par.close();
            }
        }
        if (!lead) {
            return;
        }
        Map<String, INDArray> full = gathered;
        LanguageModel trained = lm;
        // the model (or adapter) and its tokenizer files replace --save as a whole
        ModelDirectory.replace(save, savedContent(), dir -> {
            if (full != null && peftModel instanceof PeftModel adapter) {
                adapter.saveAdapter(dir, full);            // the adapter in peft's layout, full shapes
            } else if (full != null) {
                DecoderCheckpoint.save(net.config(), full, dir, shardBytes);
            } else {
                peft.save(trained, net, dir, shardBytes);   // a HF model directory, or an adapter one with PEFT flags
            }
            CliSupport.copyTokenizerFiles(tok != null ? CliSupport.tokenizerDir(tok) : null, model, dir);
        });
        if (lossPng != null) {
            LossCurve.write(history, lossPng, "collie train: " + data.getFileName());
        }
        System.out.printf(Locale.ROOT, "final loss: %.6f%n", history.lastLoss());
        watch.report(trainer);
        if (lastEval != null) {
            if (eval != null) {
                System.out.printf(Locale.ROOT, "eval loss: %.6f (perplexity %.3f)%n", lastEval.get("loss"),
                        lastEval.get("ppl"));
            }
            for (String k : evalTask.keys()) {
                System.out.println("eval " + EvalCommand.format(k, lastEval.get(k)));
            }
        }
        if (lossPng != null) {
            System.out.println("loss curve: " + lossPng);
        }
        if (monitor != null) {
            System.out.println("monitor: " + monitorDir + " (" + String.join(", ", monitor) + ", "
                    + MonitorConfig.DASHBOARD + ")");
        }
        System.out.println("saved model to " + save);
    }

    /**
     * After a SIGTERM or SIGINT: the step in flight finished; a checkpoint of it is written (by the checkpoint
     * callback with --checkpoint-every, here with --checkpoint-dir alone; every rank takes part), --save is left as it
     * was, and the command exits with the signal's code.
     */
    private void stopWithCheckpoint(Trainer trainer, Path checkpoints, boolean lead) {
        Path step = checkpoints.resolve("step_" + trainer.globalStep());
        boolean written = checkpointEvery != null;
        if (!written && checkpointDir != null) {
            trainer.save(step);
            written = true;
        }
        if (lead) {
            String signal = StopSignals.signal().orElse("TERM");
            System.out.printf(Locale.ROOT, "stopped by SIG%s after step %d of %d: %s%n", signal, trainer.globalStep(),
                    trainer.totalSteps(), written ? "checkpoint " + step + " (continue with --resume " + step + ")"
                            : "no checkpoint written (give --checkpoint-dir DIR to have one); " + save
                            + " is unchanged");
            exitCode = StopSignals.exitCode(signal);
        }
    }

    private void checkOptions() {
        if (servePort != null) {
            if (servePort < 0 || servePort > 65535) {
                throw new CollieException("--serve " + servePort + ": a port in 0..65535");
            }
            if (tp > 1 || pp > 1 || zero == 3) {
                throw new CollieException("--serve decodes on the lead rank's weights, which --tp, --pp and --zero 3"
                        + " split: serve with --dp and --zero 0-2, or serve the saved model with collie serve");
            }
            if (!"local".equals(backend)) {
                throw new CollieException("--serve with --backend " + backend + ": serve from one JVM (--backend"
                        + " local), or serve the saved model with collie serve");
            }
        }
        if (dp < 1) {
            throw new CollieException("--dp must be >= 1, got " + dp);
        }
        if (tp < 1 || pp < 1) {
            throw new CollieException("--tp and --pp must be >= 1, got " + tp + " and " + pp);
        }
        if (zero < 0 || zero > 3) {
            throw new CollieException("--zero " + zero + ": expected 0, 1, 2 or 3");
        }
        if (zero > 0 && dp == 1 && "local".equals(backend)) {
            throw new CollieException("--zero " + zero + " shards over data-parallel ranks: add --dp N (N >= 2)");
        }
        if ((tp > 1 || pp > 1) && peft.existing.merge) {
            throw new CollieException("--merge with --tp or --pp: save the adapter (drop --merge), then merge it on one"
                    + " rank: collie train --model BASE --adapter DIR --merge --steps 0 ... or in Java with"
                    + " PeftModel.mergeAndUnload()");
        }

        if ((model == null) == (preset == null)) {
            throw new CollieException(model == null ? "give --model DIR (a Hugging Face model to fine-tune) or"
                    + " --preset NAME (a new model: " + String.join(", ", Presets.names()) + ")"
                    : "give either --model or --preset, not both");
        }
        if (preset != null && !Presets.names().contains(preset)) {
            Presets.builder(preset, 1); // throws, naming the presets there are
        }
        if (data == null) {
            throw new CollieException("--data FILE is required (.jsonl, .json or .txt)");
        }
        if (!Files.exists(data)) {
            throw new CollieException("data file not found: " + data);
        }
        if (save == null) {
            throw new CollieException("--save DIR is required: where to write the trained model");
        }
        // --save itself is checked by ModelDirectory.checkWritable, with its content and the room it needs
        if (checkpointDir != null) {
            CliSupport.outputDirectory("--checkpoint-dir", checkpointDir);
        }
        if (lossPng != null) {
            CliSupport.outputFile("--loss-png", lossPng);
        }
        checkMonitor();
        CliSupport.atLeast("--keep-checkpoints", keepCheckpoints, 0);
        if (checkpointEvery != null) {
            CliSupport.atLeast("--checkpoint-every", checkpointEvery, 1);
        }
        if (steps != null) {
            CliSupport.atLeast("--steps", steps, 1);
        }
        if (epochs != null) {
            CliSupport.atLeast("--epochs", epochs, 1);
        }
        if (microBatch != null) {
            CliSupport.atLeast("--micro-batch", microBatch, 1);
        }
        if (gradAccum != null) {
            CliSupport.atLeast("--grad-accum", gradAccum, 1);
        }
        if (seq < 2) {
            throw new CollieException("--seq must be at least 2 (a next-token loss needs two tokens), got " + seq);
        }
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new CollieException("--eval-fraction must be in [0, 1), got " + evalFraction);
        }
        if (evalEvery != null && evalEvery > 0 && evalFraction == 0 && !evalTask.active()) {
            throw new CollieException("--eval-every needs evaluation data: add --eval-fraction F (e.g. 0.05) or"
                    + " --eval-task TASK --eval-data FILE");
        }
        if (evalTask.active() && (tp > 1 || pp > 1)) {
            throw new CollieException("--eval-task runs over data-parallel ranks only, each holding the whole model:"
                    + " drop --tp " + tp + " and --pp " + pp + " (or tp_size, pp_size of --config), or --eval-task");
        }
        if (logEvery < 1) {
            throw new CollieException("--log-every must be >= 1, got " + logEvery);
        }
        if (vocab != null && model != null) {
            throw new CollieException("--vocab applies to --preset only; a --model has its vocabulary in config.json");
        }
    }

    /**
     * What the run's evaluations report: the Trainer's own ({@link Trainer#EVALUATION_KEYS}) with --eval-fraction,
     * and the --eval-task's; a name both report is refused.
     */
    private Set<String> evaluationKeys() {
        Set<String> keys = new LinkedHashSet<>(evalFraction > 0 ? Trainer.EVALUATION_KEYS : Set.of());
        for (String k : evalTask.keys()) {
            if (!keys.add(k)) {
                throw new CollieException("--eval-task " + evalTask.task + " reports '" + k + "', as --eval-fraction's"
                        + " evaluation does: drop one of them, or choose other --eval-metrics");
            }
        }
        return keys;
    }

    /**
     * --monitor names known sinks and comes with --monitor-dir (and the other way round), a directory that
     * --save, replaced whole at the end, does not hold.
     */
    private void checkMonitor() {
        if (monitor == null) {
            if (monitorDir != null) {
                throw new CollieException("--monitor-dir: give --monitor " + String.join(",", MonitorSink.KNOWN)
                        + " (or some of them) to say what to write there");
            }
            return;
        }
        if (monitorDir == null) {
            throw new CollieException("--monitor needs --monitor-dir DIR: where to write "
                    + String.join(", ", monitor));
        }
        CliSupport.atLeast("--monitor-every", monitorEvery, 1);
        try {
            monitorConfig().validate();
        } catch (CollieException e) {
            throw new CollieException("--monitor: " + e.getMessage(), e);
        }
        CliSupport.outputDirectory("--monitor-dir", monitorDir);
        if (monitorDir.toAbsolutePath().normalize().startsWith(save.toAbsolutePath().normalize())) {
            throw new CollieException("--monitor-dir " + monitorDir + " is inside --save " + save + ", which the"
                    + " trained model replaces whole at the end: give a directory outside it");
        }
    }

    private MonitorConfig monitorConfig() {
        return new MonitorConfig(monitorDir, monitor, monitorEvery, true);
    }

    /** Defaults or --config, then every option given on the command line. */
    private CollieConfig config() {
        CollieConfig base = configFile != null ? CollieConfig.load(configFile) : CollieConfig.defaults();
        CollieConfig.Builder b = base.toBuilder();
        boolean lrGiven = spec.commandLine().getParseResult().hasMatchedOption("--lr");
        if (configFile == null || lrGiven) {
            b.lr(opt.lr);
        }
        if (base.seqLen() == 0 || spec.commandLine().getParseResult().hasMatchedOption("--seq")) {
            b.seqLen(seq);
        }
        if (steps != null) {
            b.maxSteps(steps);
            if (epochs == null) {
                b.trainEpochs(Integer.MAX_VALUE); // --steps alone: as many passes over the data as the steps need
            }
        }
        if (epochs != null) {
            b.trainEpochs(epochs);
        }
        if (microBatch != null) {
            b.trainMicroBatchSize(microBatch).evalBatchSize(microBatch);
        }
        if (gradAccum != null) {
            b.gradientAccumulationSteps(gradAccum);
        }
        if (seed != null) {
            b.seed(seed);
        }
        if (noShuffle) {
            b.shuffle(false);
        }
        if (evalEvery != null) {
            b.evalPerNSteps(evalEvery);
        }
        if (lrSchedule != null) {
            b.lrSchedule(lrSchedule);
        }
        if (warmup != null) {
            b.warmupSteps(warmup);
        }
        if (clipGradNorm != null && !opt.consumesClipGradNorm()) {
            b.clipGradNorm(clipGradNorm);
        }
        if (checkpointing) {
            b.checkpointing(true);
        }
        if (activation.given()) {
            b.activationDtype(activation.dtype().label());
        }
        if (workers != null) {
            b.workerThreads(workers);
        }
        if (maxNonFiniteSteps != null) {
            b.maxNonFiniteSteps(maxNonFiniteSteps);
        }
        if (dpOption != null) {
            b.dpSize(dpOption);
        }
        if (tpOption != null) {
            b.tpSize(tpOption);
        }
        if (ppOption != null) {
            b.ppSize(ppOption);
        }
        return b.build();
    }

    private DecoderForCausalLM createModel(long seed) {
        if (model != null) {
            return CliSupport.loadModel(model);
        }
        Nd4j.getRandom().setSeed(seed);
        return new DecoderForCausalLM(modelConfig, DataType.FLOAT);
    }

    /** The config of a {@code --preset} model: its vocabulary from --vocab or the tokenizer. */
    private DecoderConfig presetConfig(HfTokenizer tok) {
        int v;
        if (vocab != null) {
            v = vocab;
        } else if (tok != null) {
            v = tok.vocabSize();
        } else {
            throw new CollieException("--preset " + preset + " needs a vocabulary size: give --tokenizer DIR"
                    + " (or --vocab N for data of {\"tokens\"} rows)");
        }
        DecoderConfig.Builder cb = Presets.builder(preset, v).maxPositionEmbeddings(Math.max(2048, seq));
        if (tok != null) {
            if (tok.bosId().isPresent() && tok.bosId().getAsInt() < v) {
                cb.bosTokenId(tok.bosId().getAsInt());
            }
            if (tok.eosId().isPresent() && tok.eosId().getAsInt() < v) {
                cb.eosTokenIds(tok.eosId().getAsInt());
            }
        }
        try {
            return cb.build();
        } catch (CollieException e) {
            throw new CollieException("--preset " + preset + (vocab != null ? " --vocab " + vocab : " with the"
                    + " vocabulary of " + tok.path() + " (its largest is " + tok.largestId() + ")") + ": "
                    + e.getMessage(), e);
        }
    }
}
